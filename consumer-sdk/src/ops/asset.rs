//! Amounts of chain assets: [`Asset`], [`Symbol`], [`Totals`], and how they are spelled.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::iter::Sum;
use std::num::IntErrorKind;
use std::str::FromStr;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::Chain;

use super::Str;

/// What an asset's symbol denotes, independent of chain and encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// An asset symbol as spelled (`STEEM`, `HBD`, `VESTS`, ...), or a NAI (`@@000000021`).
///
/// Stored inline (no allocation). Symbols compare by spelling: `HIVE` and `STEEM` are never
/// equal, even though both are [`AssetKind::Liquid`]; compare [`Symbol::kind`] to ask whether
/// two symbols denote the same kind of token on their chains.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    text: [u8; Symbol::MAX_LEN],
}

/// NAI of the liquid token on both chains.
const NAI_LIQUID: &str = "@@000000021";
/// NAI of the debt token on both chains.
const NAI_DEBT: &str = "@@000000013";
/// NAI of vesting shares on both chains.
const NAI_VESTS: &str = "@@000000037";

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

    /// The symbol as printed.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or_default()
    }

    /// What the symbol denotes.
    pub fn kind(&self) -> AssetKind {
        match self.as_str() {
            "STEEM" | "HIVE" | "TESTS" | NAI_LIQUID => AssetKind::Liquid,
            "SBD" | "HBD" | "TBD" | NAI_DEBT => AssetKind::Debt,
            "VESTS" | NAI_VESTS => AssetKind::Vests,
            _ => AssetKind::Other,
        }
    }

    /// The NAI of the symbol, if known: the core NAI for liquid, debt and vests, the NAI itself
    /// for any other NAI, else `None`.
    pub fn nai(&self) -> Option<&str> {
        match self.kind() {
            AssetKind::Liquid => Some(NAI_LIQUID),
            AssetKind::Debt => Some(NAI_DEBT),
            AssetKind::Vests => Some(NAI_VESTS),
            AssetKind::Other => Some(self.as_str()).filter(|s| s.starts_with("@@")),
        }
    }

    /// The same symbol as spelled on `chain`: `STEEM`/`SBD` on Steem, `HIVE`/`HBD` on Hive,
    /// `TESTS`/`TBD` on any other chain (the testnets of both); `VESTS` for vesting shares
    /// everywhere. Other symbols are returned unchanged.
    pub fn for_chain(self, chain: &Chain) -> Symbol {
        match (self.kind(), chain.is_steem(), chain.is_hive()) {
            (AssetKind::Liquid, true, _) => Symbol::STEEM,
            (AssetKind::Liquid, _, true) => Symbol::HIVE,
            (AssetKind::Liquid, ..) => Symbol::TESTS,
            (AssetKind::Debt, true, _) => Symbol::SBD,
            (AssetKind::Debt, _, true) => Symbol::HBD,
            (AssetKind::Debt, ..) => Symbol::TBD,
            (AssetKind::Vests, ..) => Symbol::VESTS,
            (AssetKind::Other, ..) => self,
        }
    }

    /// Parses a NAI (`@@` and nine digits) into its symbol.
    fn from_nai(nai: &str) -> Result<Symbol, AssetError> {
        let digits = nai.strip_prefix("@@").filter(|d| d.len() == 9);
        if !digits.is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit())) {
            return Err(AssetError::Nai(nai.into()));
        }
        // Vesting shares are spelled alike on every chain.
        Ok(if nai == NAI_VESTS {
            Symbol::VESTS
        } else {
            Symbol::known(nai)
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

// ------------------------------------------------------------------ spelling --

thread_local! {
    /// The chain whose spelling assets decoded on this thread take (see [`with_chain`]).
    static SPELLING: Cell<Option<Chain>> = const { Cell::new(None) };
}

/// Runs `f` (a deserialization) with assets spelled as on `chain`: every liquid or debt asset
/// decoded inside, in text or NAI form, gets `chain`'s symbol ([`Symbol::for_chain`]). With
/// `None`, text symbols keep their spelling and NAIs stay NAIs, since a NAI names no chain.
///
/// [`crate::Op::decode`] and [`crate::Op::view`] call this with the ring's chain, so ops read
/// through a subscriber are spelled right without it; call it when decoding op bodies from
/// elsewhere.
///
/// ```
/// use consumer_sdk::{Chain, ops::{with_chain, Transfer}};
///
/// let body = br#"{"from":"a","to":"b","memo":"",
///     "amount":{"amount":"10000","precision":3,"nai":"@@000000021"}}"#;
/// let t: Transfer = with_chain(Some(Chain::HIVE), || serde_json::from_slice(body))?;
/// assert_eq!(t.amount.to_string(), "10.000 HIVE");
/// let t: Transfer = serde_json::from_slice(body)?;
/// assert_eq!(t.amount.to_string(), "10.000 @@000000021");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn with_chain<R>(chain: Option<Chain>, f: impl FnOnce() -> R) -> R {
    /// Restores the previous spelling, also when `f` unwinds.
    struct Restore(Option<Chain>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SPELLING.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SPELLING.with(|s| s.replace(chain)));
    f()
}

fn spelled(symbol: Symbol) -> Symbol {
    match SPELLING.with(Cell::get) {
        Some(chain) => symbol.for_chain(&chain),
        None => symbol,
    }
}

// -------------------------------------------------------------------- assets --

/// An amount of a chain asset, from `"1.000 STEEM"` or
/// `{"amount":"1000","precision":3,"nai":"@@000000021"}`.
///
/// See the [module docs](super#assets) for how the two forms are read. `Display` prints the
/// text form, e.g. `"1.000 HIVE"`; so does `Serialize`. Two assets are equal when amount,
/// precision and symbol are; they are ordered only when precision and symbol are the same
/// (`partial_cmp` is `None` otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Asset {
    /// The amount in the smallest unit (`1.000 STEEM` is 1000).
    pub amount: i64,
    /// Number of decimals (3 for STEEM/SBD, 6 for VESTS); at most 18.
    pub precision: u8,
    /// The symbol.
    pub symbol: Symbol,
}

impl Asset {
    /// The largest precision accepted.
    pub const MAX_PRECISION: u8 = 18;

    /// `amount` smallest units of `symbol` with `precision` decimals:
    /// `Asset::new(1500, 3, Symbol::HIVE)` is `1.500 HIVE`. Fails if `precision` is above 18.
    pub fn new(amount: i64, precision: u8, symbol: Symbol) -> Result<Asset, AssetError> {
        if precision > Asset::MAX_PRECISION {
            return Err(AssetError::Precision(precision.into()));
        }
        Ok(Asset {
            amount,
            precision,
            symbol,
        })
    }

    /// What the asset denotes.
    pub fn kind(&self) -> AssetKind {
        self.symbol.kind()
    }

    /// The amount in whole units as a float (`1.500 HIVE` → 1.5). Lossy above 2^53 smallest
    /// units; meant for display and rough arithmetic only.
    pub fn to_f64(&self) -> f64 {
        self.amount as f64 / 10f64.powi(i32::from(self.precision))
    }

    /// The same asset with its symbol spelled as on `chain` (see [`Symbol::for_chain`]).
    pub fn for_chain(self, chain: &Chain) -> Asset {
        Asset {
            symbol: self.symbol.for_chain(chain),
            ..self
        }
    }

    /// `self + other`; an error if symbols or precisions differ, or on overflow.
    pub fn checked_add(self, other: Asset) -> Result<Asset, AssetError> {
        self.same_unit(&other, "+")?;
        self.amount
            .checked_add(other.amount)
            .map(|amount| Asset { amount, ..self })
            .ok_or_else(|| AssetError::Arithmetic(format!("{self} + {other} overflows 64 bits")))
    }

    /// `self - other`; an error if symbols or precisions differ, or on overflow.
    pub fn checked_sub(self, other: Asset) -> Result<Asset, AssetError> {
        self.same_unit(&other, "-")?;
        self.amount
            .checked_sub(other.amount)
            .map(|amount| Asset { amount, ..self })
            .ok_or_else(|| AssetError::Arithmetic(format!("{self} - {other} overflows 64 bits")))
    }

    fn same_unit(&self, other: &Asset, op: &str) -> Result<(), AssetError> {
        if self.symbol == other.symbol && self.precision == other.precision {
            Ok(())
        } else {
            Err(AssetError::Arithmetic(format!(
                "{self} {op} {other}: different {}",
                if self.symbol == other.symbol {
                    "precisions"
                } else {
                    "symbols"
                }
            )))
        }
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
        Asset::new(amount, precision, Symbol::from_nai(nai)?)
    }
}

impl PartialOrd for Asset {
    fn partial_cmp(&self, other: &Asset) -> Option<Ordering> {
        (self.symbol == other.symbol && self.precision == other.precision)
            .then(|| self.amount.cmp(&other.amount))
    }
}

/// Why an asset could not be parsed or computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssetError {
    /// The text was empty.
    #[error("empty asset")]
    Empty,
    /// The text had no `' '` between amount and symbol.
    #[error("asset {0:?} is not of the form \"1.000 STEEM\"")]
    Form(String),
    /// The amount was not `[-]digits[.digits]` (text) or an integer string (NAI); holds the
    /// whole text, or the NAI form's `amount`.
    #[error("invalid asset amount in {0:?}")]
    Amount(String),
    /// The amount does not fit in an `i64` of smallest units; holds the whole text, or the
    /// NAI form's `amount`.
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
    /// Adding or subtracting assets of different symbols or precisions, or overflowing.
    #[error("{0}")]
    Arithmetic(String),
}

impl FromStr for Asset {
    type Err = AssetError;

    /// Parses `[-]digits[.digits] SYMBOL` with exactly one space; the precision is the number
    /// of decimals written.
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

/// Writes `amount` smallest units with `precision` decimals and the symbol.
fn write_amount(
    f: &mut fmt::Formatter<'_>,
    amount: i128,
    precision: u8,
    symbol: &Symbol,
) -> fmt::Result {
    let magnitude = amount.unsigned_abs();
    let (int, frac) = match 10u128.checked_pow(u32::from(precision)) {
        Some(scale) => (magnitude / scale, magnitude % scale),
        None => (0, magnitude),
    };
    let sign = if amount < 0 { "-" } else { "" };
    let precision = usize::from(precision);
    if precision == 0 {
        write!(f, "{sign}{int} {symbol}")
    } else {
        write!(f, "{sign}{int}.{frac:0precision$} {symbol}")
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_amount(f, self.amount.into(), self.precision, &self.symbol)
    }
}

impl Serialize for Asset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
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
                let asset: Asset = s.parse().map_err(E::custom)?;
                Ok(Asset {
                    symbol: spelled(asset.symbol),
                    ..asset
                })
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
                let asset = Asset::from_nai(&amount, precision, &nai).map_err(de::Error::custom)?;
                Ok(Asset {
                    symbol: spelled(asset.symbol),
                    ..asset
                })
            }
        }

        deserializer.deserialize_any(AssetVisitor)
    }
}

// -------------------------------------------------------------------- totals --

/// Running totals per symbol and precision: what `Sum` of assets gives, since assets of
/// different symbols cannot be added. Totals are kept in 128 bits, so they do not overflow.
///
/// ```
/// use consumer_sdk::ops::{Asset, Totals};
///
/// let amounts: Vec<Asset> = ["1.000 HIVE", "0.500 HBD", "2.250 HIVE"]
///     .iter().map(|a| a.parse().unwrap()).collect();
/// let totals: Totals = amounts.iter().sum();
/// assert_eq!(totals.to_string(), "3.250 HIVE, 0.500 HBD");
/// assert_eq!(totals.get(&"3.250 HIVE".parse::<Asset>()?.symbol, 3), Some(3250));
/// # Ok::<(), consumer_sdk::ops::AssetError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Keyed by kind first, so liquid comes before debt before vests in listings.
    sums: BTreeMap<(AssetKind, Symbol, u8), i128>,
}

impl Totals {
    /// No totals yet.
    pub fn new() -> Totals {
        Totals::default()
    }

    /// Adds `asset` to the total of its symbol and precision.
    pub fn add(&mut self, asset: &Asset) {
        *self
            .sums
            .entry((asset.kind(), asset.symbol, asset.precision))
            .or_default() += i128::from(asset.amount);
    }

    /// The total of `symbol` at `precision`, in smallest units, if any asset of it was added.
    pub fn get(&self, symbol: &Symbol, precision: u8) -> Option<i128> {
        self.sums.get(&(symbol.kind(), *symbol, precision)).copied()
    }

    /// Each total as (symbol, precision, amount in smallest units); liquid first, then debt,
    /// vests and others.
    pub fn iter(&self) -> impl Iterator<Item = (Symbol, u8, i128)> + '_ {
        self.sums.iter().map(|(&(_, s, p), &a)| (s, p, a))
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }
}

impl fmt::Display for Totals {
    /// The totals like assets, separated by `", "`: `3.250 HIVE, 0.500 HBD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (symbol, precision, amount)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_amount(f, amount, precision, &symbol)?;
        }
        Ok(())
    }
}

impl Extend<Asset> for Totals {
    fn extend<I: IntoIterator<Item = Asset>>(&mut self, iter: I) {
        iter.into_iter().for_each(|a| self.add(&a));
    }
}

impl<'a> Extend<&'a Asset> for Totals {
    fn extend<I: IntoIterator<Item = &'a Asset>>(&mut self, iter: I) {
        iter.into_iter().for_each(|a| self.add(a));
    }
}

impl Sum<Asset> for Totals {
    fn sum<I: Iterator<Item = Asset>>(iter: I) -> Totals {
        let mut t = Totals::new();
        t.extend(iter);
        t
    }
}

impl<'a> Sum<&'a Asset> for Totals {
    fn sum<I: Iterator<Item = &'a Asset>>(iter: I) -> Totals {
        let mut t = Totals::new();
        t.extend(iter);
        t
    }
}

impl FromIterator<Asset> for Totals {
    fn from_iter<I: IntoIterator<Item = Asset>>(iter: I) -> Totals {
        iter.into_iter().sum()
    }
}
