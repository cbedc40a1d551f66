//! Typed, borrowed views of the most common Steem and Hive operations.
//!
//! # Semantics
//!
//! A ring record carries one operation *body*: the JSON object holding the
//! operation's fields, as the node sent it. In the legacy (condenser)
//! encoding `["vote",{...}]` the body is the `{...}` object; in the appbase
//! encoding `{"type":"vote_operation","value":{...}}` it is the `value`
//! object. The operation type travels beside the body as a topic, the type
//! name without its `_operation` suffix (see [`topic_of`] and
//! [`OpView::TOPIC`]).
//!
//! Every view decodes with `serde_json::from_slice::<View>(body)` from a body
//! in either encoding and from either chain:
//!
//! - Fields that Steem and Hive name differently (`reward_steem` /
//!   `reward_hive`, `percent_steem_dollars` / `percent_hbd`,
//!   `sbd_interest_rate` / `hbd_interest_rate`, ...) are accepted under both
//!   names and stored under a chain-neutral one: *liquid* for STEEM/HIVE,
//!   *debt* for SBD/HBD.
//! - Unknown fields are ignored, so additions in newer nodes do not break
//!   bots.
//! - Strings (also in lists such as `required_auths`) are
//!   [`Cow<'a, str>`](Cow): borrowed from the body when the JSON string has no
//!   escapes, owned when it has.
//! - Nested JSON inside strings (`json_metadata`, `custom_json.json`) is kept
//!   as the string; [`Comment::parse_metadata`] and [`CustomJson::parse_json`]
//!   parse it on demand. `comment_options.extensions` is decoded into
//!   [`CommentOptionsExtension`] from all three encodings of beneficiaries
//!   (Steem legacy `[0,{..}]`, Hive legacy `["comment_payout_beneficiaries",{..}]`,
//!   appbase `{"type":..,"value":{..}}`); any other extension is kept as
//!   `serde_json::Value`.
//!
//! # Assets
//!
//! [`Asset`] reads both the legacy text form `"1.000 STEEM"` (also `HIVE`,
//! `SBD`, `HBD`, `VESTS` and the testnet `TESTS`, `TBD`) and the appbase NAI
//! form `{"amount":"1000","precision":3,"nai":"@@000000021"}`, and normalises
//! both to an integer `amount` in the smallest unit, a `precision` (number of
//! decimals, at most 18) and a [`Symbol`] whose [`AssetKind`] says *liquid*,
//! *debt*, *vests* or *other*. Text input keeps its spelling; a NAI names no
//! chain, so `@@000000021`, `@@000000013` and `@@000000037` are spelled
//! `STEEM`, `SBD` and `VESTS` ([`Asset::for_chain`] respells). Equality
//! compares amount, precision and kind, not spelling: `"1.000 HIVE"` equals
//! the NAI form of the same amount. Any other symbol or NAI is kept verbatim
//! and compared verbatim.
//!
//! # Example
//!
//! ```
//! use consumer_sdk::ops::{topic_of, AssetKind, OpView, Transfer};
//!
//! let legacy = br#"{"from":"alice","to":"bob","amount":"1.500 HIVE","memo":"thanks \"bob\""}"#;
//! let appbase = br#"{"from":"alice","to":"bob","memo":"thanks \"bob\"",
//!     "amount":{"amount":"1500","precision":3,"nai":"@@000000021"}}"#;
//! let a: Transfer = serde_json::from_slice(legacy)?;
//! let b: Transfer = serde_json::from_slice(appbase)?;
//! assert_eq!(a, b);
//! assert_eq!((a.amount.amount, a.amount.kind()), (1500, AssetKind::Liquid));
//! assert_eq!(a.amount.to_string(), "1.500 HIVE");
//! assert_eq!(b.amount.to_string(), "1.500 STEEM");
//! assert_eq!(a.memo, r#"thanks "bob""#);
//! assert_eq!(topic_of("transfer_operation"), Transfer::TOPIC);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::num::IntErrorKind;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Strips a trailing `_operation` from an appbase operation type, giving the
/// topic (`"vote_operation"` → `"vote"`); legacy names pass through unchanged.
pub fn topic_of(op_type: &str) -> &str {
    op_type.strip_suffix("_operation").unwrap_or(op_type)
}

/// A typed view of one operation body, decodable from either encoding.
pub trait OpView<'a>: Deserialize<'a> {
    /// The operation type without the `_operation` suffix, e.g. `"vote"`.
    const TOPIC: &'static str;
}

// ---------------------------------------------------------------- assets --

/// What an asset's symbol denotes, independent of chain and encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssetKind {
    /// The liquid token: `STEEM`, `HIVE`, testnet `TESTS`, NAI `@@000000021`.
    Liquid,
    /// The debt token: `SBD`, `HBD`, testnet `TBD`, NAI `@@000000013`.
    Debt,
    /// Vesting shares: `VESTS`, NAI `@@000000037`.
    Vests,
    /// Any other symbol or NAI (kept verbatim in the [`Symbol`]).
    Other,
}

/// A chain, for spelling the liquid and debt symbols (see [`Asset::for_chain`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Chain {
    /// Steem: `STEEM`, `SBD`.
    Steem,
    /// Hive: `HIVE`, `HBD`.
    Hive,
    /// The testnets of both chains: `TESTS`, `TBD`.
    Testnet,
}

/// An asset symbol as spelled in text (`STEEM`, `HBD`, ...), or a NAI
/// (`@@000000099`) that is not one of the three core ones.
///
/// Stored inline (no allocation). Equality and hashing go by [`AssetKind`],
/// so `HIVE`, `STEEM` and `TESTS` are equal; symbols of kind
/// [`AssetKind::Other`] compare by their text.
#[derive(Clone, Copy)]
pub struct Symbol {
    len: u8,
    text: [u8; Symbol::MAX_LEN],
}

impl Symbol {
    /// The longest symbol text kept (a NAI is 11 characters).
    pub const MAX_LEN: usize = 11;
    /// `STEEM`.
    pub const STEEM: Symbol = Symbol::known("STEEM");
    /// `SBD`.
    pub const SBD: Symbol = Symbol::known("SBD");
    /// `HIVE`.
    pub const HIVE: Symbol = Symbol::known("HIVE");
    /// `HBD`.
    pub const HBD: Symbol = Symbol::known("HBD");
    /// `TESTS` (testnet liquid).
    pub const TESTS: Symbol = Symbol::known("TESTS");
    /// `TBD` (testnet debt).
    pub const TBD: Symbol = Symbol::known("TBD");
    /// `VESTS`.
    pub const VESTS: Symbol = Symbol::known("VESTS");

    const fn known(s: &str) -> Symbol {
        let mut text = [0; Symbol::MAX_LEN];
        let mut i = 0;
        while i < s.len() {
            text[i] = s.as_bytes()[i];
            i += 1;
        }
        Symbol {
            len: s.len() as u8,
            text,
        }
    }

    /// The symbol as printed: the text received, or `STEEM`/`SBD`/`VESTS` for
    /// a core NAI, or the NAI itself for any other.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or_default()
    }

    /// What the symbol denotes.
    pub fn kind(&self) -> AssetKind {
        match self.as_str() {
            "STEEM" | "HIVE" | "TESTS" => AssetKind::Liquid,
            "SBD" | "HBD" | "TBD" => AssetKind::Debt,
            "VESTS" => AssetKind::Vests,
            _ => AssetKind::Other,
        }
    }

    /// The NAI of the symbol, if known: the core NAI for liquid, debt and
    /// vests, the NAI itself if it came as an unknown NAI, else `None`.
    pub fn nai(&self) -> Option<&str> {
        match self.kind() {
            AssetKind::Liquid => Some("@@000000021"),
            AssetKind::Debt => Some("@@000000013"),
            AssetKind::Vests => Some("@@000000037"),
            AssetKind::Other => Some(self.as_str()).filter(|s| s.starts_with("@@")),
        }
    }

    /// Parses a NAI (`@@` and nine digits) into its symbol.
    fn from_nai(nai: &str) -> Result<Symbol, AssetError> {
        let digits = nai.strip_prefix("@@").filter(|d| d.len() == 9);
        if !digits.is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) {
            return Err(AssetError::Nai(nai.into()));
        }
        Ok(match nai {
            "@@000000021" => Symbol::STEEM,
            "@@000000013" => Symbol::SBD,
            "@@000000037" => Symbol::VESTS,
            _ => Symbol::known(nai),
        })
    }
}

impl FromStr for Symbol {
    type Err = AssetError;

    /// Accepts a text symbol (1 to 11 ASCII capitals) or a NAI.
    fn from_str(s: &str) -> Result<Symbol, AssetError> {
        if s.starts_with("@@") {
            Symbol::from_nai(s)
        } else if (1..=Symbol::MAX_LEN).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_uppercase())
        {
            Ok(Symbol::known(s))
        } else {
            Err(AssetError::Symbol(s.into()))
        }
    }
}

impl PartialEq for Symbol {
    fn eq(&self, other: &Symbol) -> bool {
        match (self.kind(), other.kind()) {
            (AssetKind::Other, AssetKind::Other) => self.as_str() == other.as_str(),
            (a, b) => a == b,
        }
    }
}

impl Eq for Symbol {}

impl Hash for Symbol {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let kind = self.kind();
        kind.hash(state);
        if kind == AssetKind::Other {
            self.as_str().hash(state);
        }
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Symbol").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of a chain asset, from `"1.000 STEEM"` or
/// `{"amount":"1000","precision":3,"nai":"@@000000021"}`.
///
/// See the [module docs](self#assets) for how the two forms are normalised.
/// `Display` prints the canonical text form, e.g. `"1.000 STEEM"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Asset {
    /// The amount in the smallest unit (`1.000 STEEM` is 1000).
    pub amount: i64,
    /// Number of decimals (3 for STEEM/SBD, 6 for VESTS); parsing rejects more than 18.
    pub precision: u8,
    /// The symbol.
    pub symbol: Symbol,
}

impl Asset {
    /// The largest precision accepted by parsing.
    pub const MAX_PRECISION: u8 = 18;

    /// What the asset denotes.
    pub fn kind(&self) -> AssetKind {
        self.symbol.kind()
    }

    /// The amount in whole units as a float (`1.500 HIVE` → 1.5). Lossy above
    /// 2^53 smallest units; meant for display and rough arithmetic only.
    pub fn to_f64(&self) -> f64 {
        self.amount as f64 / 10f64.powi(i32::from(self.precision))
    }

    /// The same asset with its liquid or debt symbol spelled as on `chain`
    /// (e.g. a NAI-decoded `STEEM` becomes `HIVE` for [`Chain::Hive`]).
    pub fn for_chain(self, chain: Chain) -> Asset {
        let symbol = match (self.kind(), chain) {
            (AssetKind::Liquid, Chain::Steem) => Symbol::STEEM,
            (AssetKind::Liquid, Chain::Hive) => Symbol::HIVE,
            (AssetKind::Liquid, Chain::Testnet) => Symbol::TESTS,
            (AssetKind::Debt, Chain::Steem) => Symbol::SBD,
            (AssetKind::Debt, Chain::Hive) => Symbol::HBD,
            (AssetKind::Debt, Chain::Testnet) => Symbol::TBD,
            _ => self.symbol,
        };
        Asset { symbol, ..self }
    }

    /// Builds an asset from the NAI form's parts.
    fn from_nai(amount: &str, precision: u8, nai: &str) -> Result<Asset, AssetError> {
        let amount = amount
            .parse()
            .map_err(|e: std::num::ParseIntError| match e.kind() {
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                    AssetError::Overflow(amount.into())
                }
                _ => AssetError::Amount(amount.into()),
            })?;
        if precision > Asset::MAX_PRECISION {
            return Err(AssetError::Precision(precision.into()));
        }
        Ok(Asset {
            amount,
            precision,
            symbol: Symbol::from_nai(nai)?,
        })
    }
}

/// Why an asset could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// The text was empty.
    #[error("empty asset")]
    Empty,
    /// The text had no `' '` between amount and symbol.
    #[error("asset {0:?} is not of the form \"1.000 STEEM\"")]
    Form(String),
    /// The amount was not `[-]digits[.digits]` (text) or an integer string
    /// (NAI); holds the whole text, or the NAI form's `amount`.
    #[error("invalid asset amount in {0:?}")]
    Amount(String),
    /// The amount does not fit in an `i64` of smallest units; holds the
    /// whole text, or the NAI form's `amount`.
    #[error("asset amount in {0:?} overflows 64 bits")]
    Overflow(String),
    /// More than 18 decimals.
    #[error("asset precision {0} is above 18")]
    Precision(usize),
    /// The symbol was not 1 to 11 ASCII capitals.
    #[error("invalid asset symbol {0:?}")]
    Symbol(String),
    /// The NAI was not `@@` followed by nine digits.
    #[error("invalid asset NAI {0:?}")]
    Nai(String),
}

impl FromStr for Asset {
    type Err = AssetError;

    /// Parses `[-]digits[.digits] SYMBOL` with exactly one space; the
    /// precision is the number of decimals written.
    fn from_str(s: &str) -> Result<Asset, AssetError> {
        if s.is_empty() {
            return Err(AssetError::Empty);
        }
        let (number, symbol) = s
            .split_once(' ')
            .ok_or_else(|| AssetError::Form(s.into()))?;
        let (negative, unsigned) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let (int, frac) = match unsigned.split_once('.') {
            Some((int, frac)) if !frac.is_empty() => (int, frac),
            Some(_) => return Err(AssetError::Amount(s.into())),
            None => (unsigned, ""),
        };
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) {
            return Err(AssetError::Amount(s.into()));
        }
        if frac.len() > usize::from(Asset::MAX_PRECISION) {
            return Err(AssetError::Precision(frac.len()));
        }
        let magnitude = int.bytes().chain(frac.bytes()).try_fold(0u64, |m, b| {
            m.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        });
        let amount = magnitude.and_then(|m| {
            if negative {
                0i64.checked_sub_unsigned(m)
            } else {
                i64::try_from(m).ok()
            }
        });
        Ok(Asset {
            amount: amount.ok_or_else(|| AssetError::Overflow(s.into()))?,
            precision: frac.len() as u8,
            symbol: symbol.parse()?,
        })
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precision = usize::from(self.precision);
        let magnitude = self.amount.unsigned_abs();
        let (int, frac) = match 10u64.checked_pow(u32::from(self.precision)) {
            Some(scale) => (magnitude / scale, magnitude % scale),
            None => (0, magnitude),
        };
        let sign = if self.amount < 0 { "-" } else { "" };
        if precision == 0 {
            write!(f, "{sign}{int} {}", self.symbol)
        } else {
            write!(f, "{sign}{int}.{frac:0precision$} {}", self.symbol)
        }
    }
}

impl<'de> Deserialize<'de> for Asset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Asset, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Field {
            Amount,
            Precision,
            Nai,
            #[serde(other)]
            Other,
        }

        struct AssetVisitor;

        impl<'de> Visitor<'de> for AssetVisitor {
            type Value = Asset;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an asset like "1.000 STEEM" or {"amount":"1000","precision":3,"nai":"@@000000021"}"#)
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Asset, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Asset, A::Error> {
                let (mut amount, mut precision, mut nai) = (None, None, None);
                while let Some(field) = map.next_key()? {
                    match field {
                        Field::Amount => amount = Some(map.next_value::<Str<'de>>()?.0),
                        Field::Precision => precision = Some(map.next_value::<u8>()?),
                        Field::Nai => nai = Some(map.next_value::<Str<'de>>()?.0),
                        Field::Other => drop(map.next_value::<IgnoredAny>()?),
                    }
                }
                let amount = amount.ok_or_else(|| de::Error::missing_field("amount"))?;
                let precision = precision.ok_or_else(|| de::Error::missing_field("precision"))?;
                let nai = nai.ok_or_else(|| de::Error::missing_field("nai"))?;
                Asset::from_nai(&amount, precision, &nai).map_err(de::Error::custom)
            }
        }

        deserializer.deserialize_any(AssetVisitor)
    }
}

// ----------------------------------------------------------------- views --

/// `vote`: `voter` votes on the post or comment `author`/`permlink`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Vote<'a> {
    /// The voting account.
    #[serde(borrow)]
    pub voter: Cow<'a, str>,
    /// The author of the voted post or comment.
    #[serde(borrow)]
    pub author: Cow<'a, str>,
    /// The permlink of the voted post or comment.
    #[serde(borrow)]
    pub permlink: Cow<'a, str>,
    /// Vote weight in basis points, -10000 (100 % downvote) to 10000; 0 removes the vote.
    pub weight: i16,
}

/// `comment`: creates or edits a post (empty `parent_author`) or a reply.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Comment<'a> {
    /// The parent's author; empty for a root post.
    #[serde(borrow)]
    pub parent_author: Cow<'a, str>,
    /// The parent's permlink; for a root post, the main tag (category).
    #[serde(borrow)]
    pub parent_permlink: Cow<'a, str>,
    /// The author.
    #[serde(borrow)]
    pub author: Cow<'a, str>,
    /// The permlink, unique per author.
    #[serde(borrow)]
    pub permlink: Cow<'a, str>,
    /// The title (usually empty for replies).
    #[serde(borrow)]
    pub title: Cow<'a, str>,
    /// The body: markdown, or a diff-match-patch patch when editing.
    #[serde(borrow)]
    pub body: Cow<'a, str>,
    /// JSON text (tags, app, ...), often empty; see [`Comment::parse_metadata`].
    #[serde(borrow)]
    pub json_metadata: Cow<'a, str>,
}

impl Comment<'_> {
    /// Whether this is a root post rather than a reply.
    pub fn is_post(&self) -> bool {
        self.parent_author.is_empty()
    }

    /// Parses `json_metadata` as JSON (e.g. into `serde_json::Value`); fails
    /// on the empty string, which many comments carry.
    pub fn parse_metadata<'s, T: Deserialize<'s>>(&'s self) -> serde_json::Result<T> {
        serde_json::from_str(&self.json_metadata)
    }
}

/// `transfer`: moves a liquid or debt amount between accounts.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Transfer<'a> {
    /// The sender.
    #[serde(borrow)]
    pub from: Cow<'a, str>,
    /// The recipient.
    #[serde(borrow)]
    pub to: Cow<'a, str>,
    /// The amount (STEEM/HIVE or SBD/HBD).
    pub amount: Asset,
    /// The memo; starts with `#` when encrypted.
    #[serde(borrow)]
    pub memo: Cow<'a, str>,
}

/// `transfer_to_vesting`: powers up liquid tokens into vesting shares.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TransferToVesting<'a> {
    /// The account paying.
    #[serde(borrow)]
    pub from: Cow<'a, str>,
    /// The account receiving the vesting shares; empty means `from`.
    #[serde(borrow)]
    pub to: Cow<'a, str>,
    /// The liquid amount powered up.
    pub amount: Asset,
}

/// `custom_json`: an application message (follows, games, sidechains, ...).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CustomJson<'a> {
    /// Accounts that signed with their active authority.
    #[serde(borrow, deserialize_with = "borrowed_strs")]
    pub required_auths: Vec<Cow<'a, str>>,
    /// Accounts that signed with their posting authority.
    #[serde(borrow, deserialize_with = "borrowed_strs")]
    pub required_posting_auths: Vec<Cow<'a, str>>,
    /// The application id, e.g. `follow` or `ssc-mainnet-hive`.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The message: JSON text inside a string; see [`CustomJson::parse_json`].
    #[serde(borrow)]
    pub json: Cow<'a, str>,
}

impl CustomJson<'_> {
    /// Parses the `json` string as JSON, e.g. into `serde_json::Value` or an
    /// application's own type (which may borrow from `self`).
    pub fn parse_json<'s, T: Deserialize<'s>>(&'s self) -> serde_json::Result<T> {
        serde_json::from_str(&self.json)
    }
}

/// `comment_options`: payout options and beneficiaries of a post or comment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CommentOptions<'a> {
    /// The author.
    #[serde(borrow)]
    pub author: Cow<'a, str>,
    /// The permlink.
    #[serde(borrow)]
    pub permlink: Cow<'a, str>,
    /// The most the post may pay out (a debt amount; 0 declines payout).
    pub max_accepted_payout: Asset,
    /// Share of the author reward paid in debt tokens, in basis points
    /// (`percent_steem_dollars` on Steem, `percent_hbd` on Hive).
    #[serde(rename = "percent_steem_dollars", alias = "percent_hbd")]
    pub percent_debt: u16,
    /// Whether the post may be voted on.
    pub allow_votes: bool,
    /// Whether voters earn curation rewards.
    pub allow_curation_rewards: bool,
    /// Extensions, in practice at most one list of beneficiaries.
    #[serde(borrow)]
    pub extensions: Vec<CommentOptionsExtension<'a>>,
}

impl CommentOptions<'_> {
    /// The beneficiaries, or an empty slice if none are set.
    pub fn beneficiaries(&self) -> &[Beneficiary<'_>] {
        self.extensions
            .iter()
            .find_map(|e| match e {
                CommentOptionsExtension::Beneficiaries(b) => Some(b.as_slice()),
                CommentOptionsExtension::Other { .. } => None,
            })
            .unwrap_or_default()
    }
}

/// One element of [`CommentOptions::extensions`], from `[tag, value]`
/// (legacy; the tag is an index on Steem, a name on Hive) or
/// `{"type": tag, "value": value}` (appbase; `type` must come first, as nodes
/// send it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommentOptionsExtension<'a> {
    /// `comment_payout_beneficiaries`: accounts sharing the author reward.
    Beneficiaries(Vec<Beneficiary<'a>>),
    /// Any other extension.
    Other {
        /// The variant as sent: an index (Steem legacy) or a name.
        tag: Value,
        /// The variant's value.
        value: Value,
    },
}

/// An account receiving part of an author reward.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Beneficiary<'a> {
    /// The account.
    #[serde(borrow)]
    pub account: Cow<'a, str>,
    /// Its share in basis points of the author reward.
    pub weight: u16,
}

impl<'de: 'a, 'a> Deserialize<'de> for CommentOptionsExtension<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Body<'a> {
            #[serde(borrow)]
            beneficiaries: Vec<Beneficiary<'a>>,
        }

        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Field {
            Type,
            Value,
            #[serde(other)]
            Other,
        }

        fn is_beneficiaries(tag: &Value) -> bool {
            *tag == 0 || *tag == "comment_payout_beneficiaries"
        }

        struct ExtensionVisitor<'a>(PhantomData<CommentOptionsExtension<'a>>);

        impl<'de: 'a, 'a> Visitor<'de> for ExtensionVisitor<'a> {
            type Value = CommentOptionsExtension<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an extension as [tag, value] or {"type": tag, "value": value}"#)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let tag: Value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let missing = || de::Error::invalid_length(1, &self);
                Ok(if is_beneficiaries(&tag) {
                    let body: Body<'a> = seq.next_element()?.ok_or_else(missing)?;
                    CommentOptionsExtension::Beneficiaries(body.beneficiaries)
                } else {
                    let value = seq.next_element()?.ok_or_else(missing)?;
                    CommentOptionsExtension::Other { tag, value }
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut tag, mut extension) = (None::<Value>, None);
                while let Some(field) = map.next_key()? {
                    match (field, &tag) {
                        (Field::Type, _) => tag = Some(map.next_value()?),
                        (Field::Value, Some(t)) if is_beneficiaries(t) => {
                            let body: Body<'a> = map.next_value()?;
                            extension =
                                Some(CommentOptionsExtension::Beneficiaries(body.beneficiaries));
                        }
                        (Field::Value, Some(t)) => {
                            extension = Some(CommentOptionsExtension::Other {
                                tag: t.clone(),
                                value: map.next_value()?,
                            });
                        }
                        (Field::Value, None) => {
                            return Err(de::Error::custom("extension `value` before `type`"));
                        }
                        (Field::Other, _) => drop(map.next_value::<IgnoredAny>()?),
                    }
                }
                extension.ok_or_else(|| de::Error::missing_field("value"))
            }
        }

        deserializer.deserialize_any(ExtensionVisitor(PhantomData))
    }
}

/// `claim_reward_balance`: moves pending rewards into the account's balances.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ClaimRewardBalance<'a> {
    /// The claiming account.
    #[serde(borrow)]
    pub account: Cow<'a, str>,
    /// Liquid reward claimed (`reward_steem` on Steem, `reward_hive` on Hive).
    #[serde(rename = "reward_steem", alias = "reward_hive")]
    pub reward_liquid: Asset,
    /// Debt reward claimed (`reward_sbd` on Steem, `reward_hbd` on Hive).
    #[serde(rename = "reward_sbd", alias = "reward_hbd")]
    pub reward_debt: Asset,
    /// Vesting reward claimed.
    pub reward_vests: Asset,
}

/// `delegate_vesting_shares`: sets (not adds to) a delegation; 0 removes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DelegateVestingShares<'a> {
    /// The delegating account.
    #[serde(borrow)]
    pub delegator: Cow<'a, str>,
    /// The receiving account.
    #[serde(borrow)]
    pub delegatee: Cow<'a, str>,
    /// The new total delegation, in VESTS.
    pub vesting_shares: Asset,
}

/// `account_witness_vote`: approves or unapproves a witness.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AccountWitnessVote<'a> {
    /// The voting account.
    #[serde(borrow)]
    pub account: Cow<'a, str>,
    /// The witness voted for.
    #[serde(borrow)]
    pub witness: Cow<'a, str>,
    /// `true` to approve, `false` to remove the vote.
    pub approve: bool,
}

/// `account_witness_proxy`: delegates witness voting to another account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AccountWitnessProxy<'a> {
    /// The account setting its proxy.
    #[serde(borrow)]
    pub account: Cow<'a, str>,
    /// The proxy; empty clears it.
    #[serde(borrow)]
    pub proxy: Cow<'a, str>,
}

/// `delete_comment`: deletes a post or comment without votes or replies.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DeleteComment<'a> {
    /// The author.
    #[serde(borrow)]
    pub author: Cow<'a, str>,
    /// The permlink.
    #[serde(borrow)]
    pub permlink: Cow<'a, str>,
}

/// `transfer_to_savings`: moves liquid or debt tokens into savings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TransferToSavings<'a> {
    /// The sender.
    #[serde(borrow)]
    pub from: Cow<'a, str>,
    /// The account whose savings receive the amount.
    #[serde(borrow)]
    pub to: Cow<'a, str>,
    /// The amount.
    pub amount: Asset,
    /// The memo.
    #[serde(borrow)]
    pub memo: Cow<'a, str>,
}

/// `transfer_from_savings`: starts a (3.5-day) withdrawal from savings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TransferFromSavings<'a> {
    /// The account whose savings are withdrawn.
    #[serde(borrow)]
    pub from: Cow<'a, str>,
    /// The request id, unique per `from`, for cancelling.
    pub request_id: u32,
    /// The recipient.
    #[serde(borrow)]
    pub to: Cow<'a, str>,
    /// The amount.
    pub amount: Asset,
    /// The memo.
    #[serde(borrow)]
    pub memo: Cow<'a, str>,
}

/// `withdraw_vesting`: starts (or with 0, stops) a power down.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WithdrawVesting<'a> {
    /// The account powering down.
    #[serde(borrow)]
    pub account: Cow<'a, str>,
    /// The total VESTS to withdraw over the power-down period.
    pub vesting_shares: Asset,
}

/// `feed_publish`: a witness's price feed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FeedPublish<'a> {
    /// The publishing witness.
    #[serde(borrow)]
    pub publisher: Cow<'a, str>,
    /// The price, e.g. base `0.440 SBD` per quote `1.000 STEEM`.
    pub exchange_rate: Price,
}

/// A price as a ratio of two assets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub struct Price {
    /// The base (numerator).
    pub base: Asset,
    /// The quote (denominator).
    pub quote: Asset,
}

/// `witness_update`: registers or updates a witness.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WitnessUpdate<'a> {
    /// The witness account.
    #[serde(borrow)]
    pub owner: Cow<'a, str>,
    /// The witness's announcement URL.
    #[serde(borrow)]
    pub url: Cow<'a, str>,
    /// The block signing public key (`STM...`); all-zero disables the witness.
    #[serde(borrow)]
    pub block_signing_key: Cow<'a, str>,
    /// The chain properties the witness votes for.
    pub props: ChainProperties,
    /// The fee paid (always zero in practice).
    pub fee: Asset,
}

/// Chain properties voted by witnesses (in `witness_update` and `pow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub struct ChainProperties {
    /// The fee for creating an account.
    pub account_creation_fee: Asset,
    /// The maximum block size in bytes.
    pub maximum_block_size: u32,
    /// Interest on debt tokens in basis points per year
    /// (`sbd_interest_rate` on Steem, `hbd_interest_rate` on Hive).
    #[serde(rename = "sbd_interest_rate", alias = "hbd_interest_rate")]
    pub debt_interest_rate: u16,
}

/// `producer_reward` (virtual): the reward for producing a block.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProducerReward<'a> {
    /// The witness that produced the block.
    #[serde(borrow)]
    pub producer: Cow<'a, str>,
    /// The reward, in VESTS (in liquid tokens in the chain's earliest blocks).
    pub vesting_shares: Asset,
}

macro_rules! topics {
    ($($view:ident => $topic:literal),* $(,)?) => {
        $(impl<'a> OpView<'a> for $view<'a> {
            const TOPIC: &'static str = $topic;
        })*
    };
}

topics! {
    Vote => "vote",
    Comment => "comment",
    Transfer => "transfer",
    TransferToVesting => "transfer_to_vesting",
    CustomJson => "custom_json",
    CommentOptions => "comment_options",
    ClaimRewardBalance => "claim_reward_balance",
    DelegateVestingShares => "delegate_vesting_shares",
    AccountWitnessVote => "account_witness_vote",
    AccountWitnessProxy => "account_witness_proxy",
    DeleteComment => "delete_comment",
    TransferToSavings => "transfer_to_savings",
    TransferFromSavings => "transfer_from_savings",
    WithdrawVesting => "withdraw_vesting",
    FeedPublish => "feed_publish",
    WitnessUpdate => "witness_update",
    ProducerReward => "producer_reward",
}

/// A string borrowed from the input when it has no escapes.
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// Deserializes a list of strings, borrowing each where possible (a plain
/// `Vec<Cow<str>>` would allocate every element).
fn borrowed_strs<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Cow<'a, str>>, D::Error> {
    let strs = Vec::<Str<'a>>::deserialize(deserializer)?;
    Ok(strs.into_iter().map(|s| s.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data");
    const REQUIRED: [&str; 9] = [
        "vote",
        "comment",
        "transfer",
        "transfer_to_vesting",
        "custom_json",
        "comment_options",
        "claim_reward_balance",
        "delegate_vesting_shares",
        "account_witness_vote",
    ];

    /// One operation found in the data: where, its topic, its compact body.
    struct Op {
        source: String,
        topic: String,
        body: String,
    }

    fn read(rel: &str) -> String {
        std::fs::read_to_string(format!("{DATA}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The `*.json` files of a data directory, sorted by name.
    fn json_files(dir: &str) -> Vec<(String, String)> {
        let mut names: Vec<String> = std::fs::read_dir(format!("{DATA}/{dir}"))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| (n.clone(), read(&format!("{dir}/{n}"))))
            .collect()
    }

    /// Collects every operation in `v`, in either encoding.
    fn collect(source: &str, v: &Value, out: &mut Vec<Op>) {
        let mut push = |name: &str, body: &Value| {
            out.push(Op {
                source: source.into(),
                topic: topic_of(name).into(),
                body: body.to_string(),
            })
        };
        match v {
            Value::Array(a) => match a.as_slice() {
                [Value::String(name), body @ Value::Object(_)] => push(name, body),
                items => items.iter().for_each(|x| collect(source, x, out)),
            },
            Value::Object(o) => match (o.get("type"), o.get("value")) {
                (Some(Value::String(name)), Some(body @ Value::Object(_)))
                    if name.ends_with("_operation") =>
                {
                    push(name, body)
                }
                _ => o.values().for_each(|x| collect(source, x, out)),
            },
            _ => {}
        }
    }

    /// The JSON documents inside the C++ raw strings `R"~(...)~"`.
    fn cpp_raw_strings() -> Vec<String> {
        let src = read("ops/hive-unit-tests/condenser_api_ops_in_block_tests.cpp");
        src.split(r#"R"~("#)
            .skip(1)
            .map(|s| {
                s.split_once(r#")~""#)
                    .expect("unterminated raw string")
                    .0
                    .to_owned()
            })
            .collect()
    }

    /// Every operation in the data set, from every source named in the brief.
    fn corpus() -> Vec<Op> {
        let mut ops = Vec::new();
        let parse = |name: &str, text: &str| -> Value {
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        for (name, text) in json_files("steem/condenser_api.get_block") {
            collect("steem get_block", &parse(&name, &text), &mut ops);
        }
        let range = read("hive/block_api.get_block_range.1000000-1000499.blocks.jsonl");
        for (i, line) in range.lines().enumerate() {
            collect(
                "hive get_block_range",
                &parse(&format!("line {i}"), line),
                &mut ops,
            );
        }
        let block = read("hive/condenser_api.get_block/1092.result.json");
        collect("hive get_block 1092", &parse("1092", &block), &mut ops);
        let in_block = read("steem/condenser_api.get_ops_in_block/25926363.result.json");
        collect(
            "steem get_ops_in_block",
            &parse("25926363", &in_block),
            &mut ops,
        );
        let defective = ["convert.json", "custom.json", "custom_json.json"];
        for (name, text) in json_files("ops/steem-python") {
            let parsed = serde_json::from_str::<Value>(&text);
            let expected_defect = defective.contains(&name.as_str());
            assert_eq!(parsed.is_err(), expected_defect, "{name}: {parsed:?}");
            if let Ok(v) = parsed {
                collect("steem-python", &v, &mut ops);
            }
        }
        for (i, raw) in cpp_raw_strings().iter().enumerate() {
            collect(
                "hive unit tests",
                &parse(&format!("raw string {i}"), raw)["op"],
                &mut ops,
            );
        }
        ops
    }

    macro_rules! views {
        ($($view:ident),* $(,)?) => {
            /// Decodes `body` with the view for `topic` (Debug-printed), or
            /// `None` if no view has that topic.
            fn decode(topic: &str, body: &str) -> Option<serde_json::Result<String>> {
                $(if topic == <$view as OpView>::TOPIC {
                    return Some(serde_json::from_str::<$view>(body).map(|v| format!("{v:?}")));
                })*
                None
            }

            /// Whether two bodies of `topic` decode to equal views, or `None`
            /// if no view has that topic.
            fn same_view(topic: &str, a: &str, b: &str) -> Option<bool> {
                $(if topic == <$view as OpView>::TOPIC {
                    let (a, b): ($view, $view) = (serde_json::from_str(a).unwrap(), serde_json::from_str(b).unwrap());
                    return Some(a == b);
                })*
                None
            }
        };
    }

    views!(
        Vote,
        Comment,
        Transfer,
        TransferToVesting,
        CustomJson,
        CommentOptions,
        ClaimRewardBalance,
        DelegateVestingShares,
        AccountWitnessVote,
        AccountWitnessProxy,
        DeleteComment,
        TransferToSavings,
        TransferFromSavings,
        WithdrawVesting,
        FeedPublish,
        WitnessUpdate,
        ProducerReward,
    );

    /// The first op of `V`'s topic in `ops` satisfying `pred`.
    fn find<'a, V: OpView<'a>>(ops: &'a [Op], pred: impl Fn(&V) -> bool) -> V {
        ops.iter()
            .filter(|op| op.topic == V::TOPIC)
            .map(|op| serde_json::from_str::<V>(&op.body).unwrap())
            .find(|v| pred(v))
            .unwrap_or_else(|| panic!("no matching {}", V::TOPIC))
    }

    fn asset(s: &str) -> Asset {
        s.parse().unwrap()
    }

    #[test]
    fn every_modelled_op_in_the_data_decodes() {
        let ops = corpus();
        let mut counts = BTreeMap::<(&str, &str), usize>::new();
        for op in &ops {
            if let Some(decoded) = decode(&op.topic, &op.body) {
                decoded.unwrap_or_else(|e| panic!("{} {}: {e}\n{}", op.source, op.topic, op.body));
                *counts
                    .entry((op.topic.as_str(), op.source.as_str()))
                    .or_default() += 1;
            }
        }
        for ((topic, source), n) in &counts {
            println!("{topic:24} {source:24} {n}");
        }
        for topic in REQUIRED {
            assert!(
                counts.keys().any(|(t, _)| *t == topic),
                "{topic} not exercised"
            );
        }
        let real = |topic: &str| {
            counts
                .iter()
                .filter(|((t, s), _)| *t == topic && *s != "hive unit tests")
                .count()
        };
        assert_eq!(
            real("delegate_vesting_shares"),
            0,
            "now in chain data: update the report"
        );
        assert_eq!(counts[&("vote", "steem get_block")], 56);
        assert_eq!(
            ops.iter()
                .filter(|op| op.source == "hive unit tests")
                .count(),
            336
        );
    }

    #[test]
    fn known_ops_have_expected_fields() {
        let ops = corpus();
        let vote: Vote = find(&ops, |v: &Vote| v.voter == "tammyfit95");
        assert_eq!(
            (vote.author.as_ref(), vote.weight),
            ("andreanerazzurro", 10000)
        );
        assert_eq!(vote.permlink, "appics-v1-appics-im-321782");
        assert!(matches!(vote.voter, Cow::Borrowed(_)));

        let t: Transfer = find(&ops, |t: &Transfer| t.from == "topfivefamily");
        assert_eq!(
            (t.to.as_ref(), t.amount),
            ("esclavos75", asset("2.000 STEEM"))
        );
        assert_eq!(
            t.memo,
            "Anunciando los ganadores del concurso. Observa Piensa Escribe. "
        );
        let t: Transfer = find(&ops, |t: &Transfer| t.from == "executive-board");
        assert!(t.memo.starts_with("\u{2757} Hello zbnbscharge1"));

        let c: ClaimRewardBalance = find(&ops, |c: &ClaimRewardBalance| c.account == "lereve");
        assert_eq!(
            c.reward_vests,
            Asset {
                amount: 20_220_225,
                precision: 6,
                symbol: Symbol::VESTS
            }
        );
        assert_eq!(
            (c.reward_liquid.amount, c.reward_liquid.kind()),
            (0, AssetKind::Liquid)
        );
        assert_eq!(c.reward_debt.to_string(), "0.000 SBD");

        let cj: CustomJson = find(&ops, |c: &CustomJson| {
            c.required_posting_auths == ["masichan"]
        });
        assert!(cj.required_auths.is_empty());
        let (what, follow): (&str, Value) = cj.parse_json().unwrap();
        assert_eq!(
            (cj.id.as_ref(), what, &follow["following"]),
            ("follow", "follow", &Value::from("emarem"))
        );
        let cj: CustomJson = find(&ops, |c: &CustomJson| c.required_auths == ["appics-pool"]);
        assert_eq!(
            cj.parse_json::<Value>().unwrap()["contractPayload"]["quantity"],
            "158.7790"
        );

        let post: Comment = find(&ops, |c: &Comment| c.author == "jeniya");
        assert!(post.is_post());
        assert_eq!(
            post.parse_metadata::<Value>().unwrap()["app"],
            "steemit/0.2"
        );

        let opts: CommentOptions = find(&ops, |o: &CommentOptions| o.author == "testing001");
        assert_eq!(
            (opts.max_accepted_payout, opts.percent_debt),
            (asset("1000.000 SBD"), 5000)
        );
        assert!(opts.allow_votes && opts.allow_curation_rewards && opts.beneficiaries().is_empty());

        let w: AccountWitnessVote = find(&ops, |w: &AccountWitnessVote| w.account == "clayop");
        assert_eq!((w.witness.as_ref(), w.approve), ("joseph", true));

        let d: DelegateVestingShares = find(&ops, |d: &DelegateVestingShares| {
            d.vesting_shares.amount == 3
        });
        assert_eq!(
            (d.delegator.as_ref(), d.delegatee.as_ref()),
            ("alice4ah", "carol4ah")
        );
        assert_eq!(d.vesting_shares, asset("0.000003 VESTS"));

        // NAI form (Hive block_api, keys sorted) equals the text form.
        let feed: FeedPublish = find(&ops, |f: &FeedPublish| f.publisher == "silversteem");
        assert_eq!(
            feed.exchange_rate,
            Price {
                base: asset("0.440 SBD"),
                quote: asset("1.000 STEEM")
            }
        );
        assert_eq!(
            feed.exchange_rate.base.for_chain(Chain::Hive).to_string(),
            "0.440 HBD"
        );

        let wu: WitnessUpdate = find(&ops, |w: &WitnessUpdate| w.owner == "arhag");
        assert_eq!(
            (wu.props.debt_interest_rate, wu.props.account_creation_fee),
            (1000, asset("100.000 STEEM"))
        );
        let wu: WitnessUpdate = find(&ops, |w: &WitnessUpdate| w.owner == "alice5ah");
        assert_eq!(wu.fee, asset("1.000 TESTS"));
    }

    #[test]
    fn both_encodings_of_each_unit_test_op_decode_equal() {
        let raws = cpp_raw_strings();
        let mut compared = 0;
        for pair in raws.chunks_exact(2) {
            let [appbase, legacy] = [&pair[0], &pair[1]].map(|raw| {
                let mut ops = Vec::new();
                collect(
                    "",
                    &serde_json::from_str::<Value>(raw).unwrap()["op"],
                    &mut ops,
                );
                ops.pop().unwrap()
            });
            assert!(pair[0].contains(r#""op":{"type""#) && pair[1].contains(r#""op":[""#));
            assert_eq!(appbase.topic, legacy.topic);
            if let Some(same) = same_view(&appbase.topic, &appbase.body, &legacy.body) {
                assert!(same, "{}\n{}", appbase.body, legacy.body);
                compared += 1;
            }
        }
        assert!(compared >= 30, "{compared}");
    }

    #[test]
    fn chain_specific_field_names() {
        let steem = r#"{"account":"a","reward_steem":"1.000 STEEM","reward_sbd":"2.000 SBD","reward_vests":"3.000000 VESTS"}"#;
        let hive = r#"{"account":"a","reward_hive":"1.000 HIVE","reward_hbd":"2.000 HBD","reward_vests":"3.000000 VESTS","x":[1]}"#;
        let (s, h): (ClaimRewardBalance, ClaimRewardBalance) = (
            serde_json::from_str(steem).unwrap(),
            serde_json::from_str(hive).unwrap(),
        );
        assert_eq!(s, h);
        assert_eq!(h.reward_debt.to_string(), "2.000 HBD");
        let neutral = r#"{"account":"a","reward_liquid":"1.000 HIVE","reward_debt":"2.000 HBD","reward_vests":"3.000000 VESTS"}"#;
        assert!(serde_json::from_str::<ClaimRewardBalance>(neutral).is_err());
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let body = br#"{"voter":"a\u0062c","author":"x","permlink":"p\"q","weight":-10000}"#;
        let v: Vote = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (v.voter.as_ref(), v.permlink.as_ref(), v.weight),
            ("abc", "p\"q", -10000)
        );
        assert!(matches!(v.author, Cow::Borrowed("x")) && matches!(v.voter, Cow::Owned(_)));
        let cj = br#"{"required_auths":["a","b\u0063"],"required_posting_auths":[],"id":"i","json":"{}"}"#;
        let cj: CustomJson = serde_json::from_slice(cj).unwrap();
        assert!(matches!(
            cj.required_auths[..],
            [Cow::Borrowed("a"), Cow::Owned(_)]
        ));
    }

    #[test]
    fn beneficiaries_in_all_encodings() {
        let with = |ext: &str| {
            format!(
                r#"{{"author":"a","permlink":"p","max_accepted_payout":"1000000.000 SBD","percent_steem_dollars":10000,
                "allow_votes":true,"allow_curation_rewards":true,"extensions":[{ext}]}}"#
            )
        };
        let list = r#"{"beneficiaries":[{"account":"good-karma","weight":2000},{"account":"null","weight":5000}]}"#;
        let expected = [("good-karma", 2000), ("null", 5000)];
        for ext in [
            format!("[0,{list}]"),
            format!(r#"["comment_payout_beneficiaries",{list}]"#),
            format!(r#"{{"type":"comment_payout_beneficiaries","value":{list}}}"#),
        ] {
            let body = with(&ext);
            let o: CommentOptions = serde_json::from_str(&body).unwrap();
            let got: Vec<_> = o
                .beneficiaries()
                .iter()
                .map(|b| (b.account.as_ref(), b.weight))
                .collect();
            assert_eq!(got, expected, "{ext}");
        }
        let unknown = with(r#"[1,{"votable_assets":[]}]"#);
        let o: CommentOptions = serde_json::from_str(&unknown).unwrap();
        assert!(o.beneficiaries().is_empty());
        assert!(
            matches!(&o.extensions[..], [CommentOptionsExtension::Other { tag, .. }] if *tag == 1)
        );
        for bad in [r#"{"value":{}}"#, "[0]", r#"[0,{"beneficiaries":3}]"#, "7"] {
            assert!(
                serde_json::from_str::<CommentOptions>(&with(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn topics() {
        assert_eq!(topic_of("vote_operation"), "vote");
        assert_eq!(topic_of("vote"), "vote");
        assert_eq!(topic_of("_operation"), "");
        assert_eq!(
            topic_of("claim_reward_balance_operation"),
            ClaimRewardBalance::TOPIC
        );
    }

    #[test]
    fn asset_text_form() {
        let a = asset("10.000000 VESTS");
        assert_eq!(
            (a.amount, a.precision, a.kind()),
            (10_000_000, 6, AssetKind::Vests)
        );
        assert_eq!(
            asset("-0.5 TBD"),
            Asset {
                amount: -5,
                precision: 1,
                symbol: Symbol::TBD
            }
        );
        assert_eq!(asset("7 FOO").to_string(), "7 FOO");
        assert_eq!(asset("007.010 HIVE").to_string(), "7.010 HIVE");
        assert_eq!(asset("-9223372036854.775808 STEEM").amount, i64::MIN);
        assert_eq!(asset("1.500 HIVE").to_f64(), 1.5);
        assert_eq!(asset("1.000 HIVE"), asset("1.000 STEEM"));
        assert_ne!(asset("1.000 HIVE"), asset("1.000 HBD"));
        assert_ne!(asset("1.000 STEEM"), asset("1.00 STEEM"));
        assert_ne!(asset("1.000 FOO"), asset("1.000 BAR"));
        assert_eq!(
            asset("1.000 TESTS").for_chain(Chain::Steem).to_string(),
            "1.000 STEEM"
        );
        assert_eq!(Symbol::HBD.nai(), Some("@@000000013"));
        assert_eq!(Symbol::from_str("FOO").unwrap().nai(), None);
    }

    #[test]
    fn malformed_assets_are_errors() {
        use AssetError::{Amount, Form, Nai, Overflow, Symbol as Sym};
        let whole = |kind: fn(String) -> AssetError, texts: &[&str]| {
            texts
                .iter()
                .map(|t| (t.to_string(), kind(t.to_string())))
                .collect::<Vec<_>>()
        };
        let mut cases = vec![
            (String::new(), AssetError::Empty),
            ("1.000".into(), Form("1.000".into())),
            ("1.000 ".into(), Sym("".into())),
            ("1.000  STEEM".into(), Sym(" STEEM".into())),
            ("1.000 steem".into(), Sym("steem".into())),
            ("1.000 STEEM X".into(), Sym("STEEM X".into())),
            ("1.000 ABCDEFGHIJKL".into(), Sym("ABCDEFGHIJKL".into())),
            ("1.000 @@00000002".into(), Nai("@@00000002".into())),
            (
                "1.0000000000000000000 STEEM".into(),
                AssetError::Precision(19),
            ),
        ];
        cases.extend(whole(
            Amount,
            &[
                "1.0.0 STEEM",
                "abc STEEM",
                " 1.000 STEEM",
                "1. STEEM",
                ".5 STEEM",
                "+1.000 STEEM",
                "--1 STEEM",
                "1,000 STEEM",
                "1.000STEEM X",
            ],
        ));
        cases.extend(whole(
            Overflow,
            &[
                "9223372036854775808 STEEM",
                "9223372036854.775808 STEEM",
                "99999999999999999999999 STEEM",
                "-9223372036854775809 STEEM",
            ],
        ));
        for (text, expected) in cases {
            assert_eq!(text.parse::<Asset>(), Err(expected.clone()), "{text:?}");
            let json = serde_json::to_string(&text).unwrap();
            let msg = serde_json::from_str::<Asset>(&json)
                .unwrap_err()
                .to_string();
            assert!(msg.starts_with(&expected.to_string()), "{msg}");
        }
    }

    #[test]
    fn asset_nai_form() {
        let nai = |amount: &str, precision: u64, nai: &str| {
            serde_json::from_str::<Asset>(&format!(
                r#"{{"amount":"{amount}","precision":{precision},"nai":"{nai}"}}"#
            ))
        };
        assert_eq!(
            nai("1000", 3, "@@000000021").unwrap().to_string(),
            "1.000 STEEM"
        );
        assert_eq!(
            nai("-1", 3, "@@000000013").unwrap().to_string(),
            "-0.001 SBD"
        );
        assert_eq!(
            nai("10000000", 6, "@@000000037").unwrap(),
            asset("10.000000 VESTS")
        );
        assert_eq!(
            nai("5", 0, "@@000000099").unwrap().to_string(),
            "5 @@000000099"
        );
        let sorted = r#"{"amount":"440","nai":"@@000000013","precision":3,"extra":null}"#;
        assert_eq!(
            serde_json::from_str::<Asset>(sorted).unwrap(),
            asset("0.440 HBD")
        );
        for (bad, why) in [
            (nai("1.5", 3, "@@000000021"), "amount"),
            (nai("", 3, "@@000000021"), "amount"),
            (nai("9223372036854775808", 3, "@@000000021"), "overflows"),
            (nai("1", 19, "@@000000021"), "precision"),
            (nai("1", 256, "@@000000021"), "u8"),
            (nai("1", 3, "@@00000002x"), "NAI"),
            (nai("1", 3, "STEEM"), "NAI"),
            (
                serde_json::from_str(r#"{"amount":"1","precision":3}"#),
                "nai",
            ),
            (
                serde_json::from_str(r#"{"amount":1000,"precision":3,"nai":"@@000000021"}"#),
                "string",
            ),
            (serde_json::from_str("1000"), "asset like"),
            (serde_json::from_str("[]"), "asset like"),
        ] {
            let msg = bad.unwrap_err().to_string();
            assert!(msg.contains(why), "{msg}");
        }
    }

    fn any_symbol() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "STEEM",
            "SBD",
            "VESTS",
            "HIVE",
            "HBD",
            "TESTS",
            "TBD",
            "FOO",
            "ABCDEFGHIJK",
            "@@000000099",
        ])
    }

    proptest! {
        // Failures are not persisted into the tree.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn display_then_parse_is_identity(amount: i64, precision in 0..=Asset::MAX_PRECISION, symbol in any_symbol()) {
            let a = Asset { amount, precision, symbol: symbol.parse().unwrap() };
            let text = a.to_string();
            let back: Asset = text.parse().unwrap();
            prop_assert_eq!(back, a);
            prop_assert_eq!(&back.to_string(), &text);
            let json: Asset = serde_json::from_str(&serde_json::to_string(&text).unwrap()).unwrap();
            prop_assert_eq!(json, a);
        }

        #[test]
        fn nai_form_equals_text_form(amount: i64, precision in 0..=Asset::MAX_PRECISION, core in 0..3usize) {
            let (nai, symbol) = [("@@000000021", "HIVE"), ("@@000000013", "SBD"), ("@@000000037", "VESTS")][core];
            let json = format!(r#"{{"amount":"{amount}","precision":{precision},"nai":"{nai}"}}"#);
            let from_nai: Asset = serde_json::from_str(&json).unwrap();
            let text = Asset { amount, precision, symbol: symbol.parse().unwrap() }.to_string();
            prop_assert_eq!(from_nai, asset(&text));
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".*", near in "-?[0-9.]{0,24} ?[A-Z@0-9]{0,13}") {
            for s in [s, near] {
                let parsed = s.parse::<Asset>();
                let via_json = serde_json::from_str::<Asset>(&serde_json::to_string(&s).unwrap());
                prop_assert_eq!(parsed.is_ok(), via_json.is_ok());
            }
        }

        #[test]
        fn arbitrary_nai_never_panics(amount in ".*", precision: u64, nai in "(@@)?[0-9a]{0,10}") {
            let json = serde_json::json!({"amount": amount, "precision": precision, "nai": nai});
            let _ = serde_json::from_str::<Asset>(&json.to_string());
        }

        #[test]
        fn display_never_panics(amount: i64, precision: u8) {
            let text = Asset { amount, precision, symbol: Symbol::VESTS }.to_string();
            prop_assert!(text.ends_with(" VESTS"));
        }
    }
}
