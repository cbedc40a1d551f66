//! The typed views, one per operation type, and [`Operation`], the enum over all of them.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{Asset, OpView, Time, ViewError, borrowed_strs, int_or_str};

/// Copies what a view borrows, so it no longer depends on the op it was decoded from.
pub(crate) trait IntoOwned {
    type Owned;
    fn into_owned(self) -> Self::Owned;
}

impl IntoOwned for Cow<'_, str> {
    type Owned = Cow<'static, str>;
    fn into_owned(self) -> Cow<'static, str> {
        Cow::Owned(Cow::into_owned(self))
    }
}

impl<T: IntoOwned> IntoOwned for Vec<T> {
    type Owned = Vec<T::Owned>;
    fn into_owned(self) -> Vec<T::Owned> {
        self.into_iter().map(IntoOwned::into_owned).collect()
    }
}

impl<T: IntoOwned> IntoOwned for Option<T> {
    type Owned = Option<T::Owned>;
    fn into_owned(self) -> Option<T::Owned> {
        self.map(IntoOwned::into_owned)
    }
}

impl<A: IntoOwned, B: IntoOwned> IntoOwned for (A, B) {
    type Owned = (A::Owned, B::Owned);
    fn into_owned(self) -> Self::Owned {
        (self.0.into_owned(), self.1.into_owned())
    }
}

macro_rules! owned_already {
    ($($t:ty),*) => {
        $(impl IntoOwned for $t {
            type Owned = $t;
            fn into_owned(self) -> $t {
                self
            }
        })*
    };
}

owned_already!(
    Asset,
    Price,
    Time,
    ChainProperties,
    Value,
    bool,
    u8,
    u16,
    u32,
    u64,
    i16,
    i64
);

/// Defines the views: each struct with its serde derives, `into_owned`, its [`OpView`] topic,
/// and [`Operation`] over all of them.
macro_rules! views {
    ($(
        $(#[$meta:meta])*
        $name:ident => $topic:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
            pub struct $name<'a> {
                $( $(#[$fmeta])* pub $field: $ty, )*
            }

            impl $name<'_> {
                /// Copies every borrowed string, so the view outlives the op it came from.
                pub fn into_owned(self) -> $name<'static> {
                    $name { $( $field: IntoOwned::into_owned(self.$field), )* }
                }
            }

            impl<'a> OpView<'a> for $name<'a> {
                const TOPIC: &'static str = $topic;
            }

            impl<'a> From<$name<'a>> for Operation<'a> {
                fn from(view: $name<'a>) -> Operation<'a> {
                    Operation::$name(view)
                }
            }
        )*

        /// Any operation: a typed view for every type that has one, the raw JSON for the rest.
        ///
        /// Decoded by topic ([`Operation::decode`], [`crate::Op::operation`]), so a `match`
        /// handles several op types without comparing topic strings. New variants may be added
        /// as views for more op types are written: keep a `_` arm (or
        /// [`Operation::Other`]) for the rest. `Serialize` writes the appbase form
        /// `{"type": topic, "value": body}` (without the `_operation` suffix).
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Operation<'a> {
            $(
                #[doc = concat!("`", $topic, "`: see [`", stringify!($name), "`].")]
                $name($name<'a>),
            )*
            /// An op type without a typed view: its topic and JSON body as received.
            Other(RawOp<'a>),
        }

        impl<'a> Operation<'a> {
            /// Decodes `body` with the view of `topic`, or keeps it raw if no view has that
            /// topic. Assets are spelled as the current [`super::with_chain`] says.
            pub fn decode(topic: &'a str, body: &'a [u8]) -> Result<Operation<'a>, ViewError> {
                let json = |e| ViewError::Json { topic: topic.into(), source: e };
                Ok(match topic {
                    $( $topic => Operation::$name(serde_json::from_slice(body).map_err(json)?), )*
                    _ => Operation::Other(RawOp::new(topic, body)?),
                })
            }

            /// The op type without the `_operation` suffix.
            pub fn topic(&self) -> &str {
                match self {
                    $( Operation::$name(_) => $topic, )*
                    Operation::Other(raw) => &raw.topic,
                }
            }

            /// Copies every borrowed string, so the value outlives the op it came from.
            pub fn into_owned(self) -> Operation<'static> {
                match self {
                    $( Operation::$name(v) => Operation::$name(v.into_owned()), )*
                    Operation::Other(raw) => Operation::Other(raw.into_owned()),
                }
            }
        }

        impl Serialize for Operation<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut s = serializer.serialize_struct("Operation", 2)?;
                s.serialize_field("type", self.topic())?;
                match self {
                    $( Operation::$name(v) => s.serialize_field("value", v)?, )*
                    Operation::Other(raw) => s.serialize_field("value", raw)?,
                }
                s.end()
            }
        }

        /// The topics that have a typed view (a variant of [`Operation`]), in the order
        /// they are defined.
        pub const TYPED_TOPICS: &[&str] = &[$($topic),*];
    };
}

/// An op without a typed view: its topic and its JSON body, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawOp<'a> {
    /// The op type without the `_operation` suffix.
    pub topic: Cow<'a, str>,
    /// The body: JSON text, as the node sent it.
    pub body: Cow<'a, str>,
}

impl<'a> RawOp<'a> {
    fn new(topic: &'a str, body: &'a [u8]) -> Result<RawOp<'a>, ViewError> {
        let body = std::str::from_utf8(body).map_err(|e| ViewError::Json {
            topic: topic.into(),
            source: de::Error::custom(format_args!("body is not UTF-8: {e}")),
        })?;
        Ok(RawOp {
            topic: Cow::Borrowed(topic),
            body: Cow::Borrowed(body),
        })
    }

    /// Parses the body, e.g. into `serde_json::Value` or a type of your own.
    pub fn parse<'s, T: Deserialize<'s>>(&'s self) -> serde_json::Result<T> {
        serde_json::from_str(&self.body)
    }

    /// Copies the borrowed topic and body.
    pub fn into_owned(self) -> RawOp<'static> {
        RawOp {
            topic: IntoOwned::into_owned(self.topic),
            body: IntoOwned::into_owned(self.body),
        }
    }
}

impl Serialize for RawOp<'_> {
    /// The body as JSON (not as a string).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.body).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

// -------------------------------------------------------------- shared parts --

/// A price as a ratio of two assets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    /// The base (numerator).
    pub base: Asset,
    /// The quote (denominator).
    pub quote: Asset,
}

/// Chain properties voted by witnesses (in `witness_update` and `pow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainProperties {
    /// The fee for creating an account.
    pub account_creation_fee: Asset,
    /// The maximum block size in bytes.
    pub maximum_block_size: u32,
    /// Interest on debt tokens in basis points per year
    /// (`sbd_interest_rate` on Steem, `hbd_interest_rate` on Hive).
    #[serde(alias = "sbd_interest_rate", alias = "hbd_interest_rate")]
    pub debt_interest_rate: u16,
}

/// An authority: who may sign for an account's owner, active or posting role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority<'a> {
    /// The weight signatures must reach.
    pub weight_threshold: u32,
    /// Accounts and their weights.
    pub account_auths: Vec<(Cow<'a, str>, u16)>,
    /// Public keys and their weights.
    pub key_auths: Vec<(Cow<'a, str>, u16)>,
}

impl IntoOwned for Authority<'_> {
    type Owned = Authority<'static>;
    fn into_owned(self) -> Authority<'static> {
        Authority {
            weight_threshold: self.weight_threshold,
            account_auths: self.account_auths.into_owned(),
            key_auths: self.key_auths.into_owned(),
        }
    }
}

/// An account receiving part of an author reward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beneficiary<'a> {
    /// The account.
    #[serde(borrow)]
    pub account: Cow<'a, str>,
    /// Its share in basis points of the author reward.
    pub weight: u16,
}

impl IntoOwned for Beneficiary<'_> {
    type Owned = Beneficiary<'static>;
    fn into_owned(self) -> Beneficiary<'static> {
        Beneficiary {
            account: IntoOwned::into_owned(self.account),
            weight: self.weight,
        }
    }
}

/// One element of [`CommentOptions::extensions`], from `[tag, value]` (legacy; the tag is an
/// index on Steem, a name on Hive) or `{"type": tag, "value": value}` (appbase; `type` must
/// come first, as nodes send it). Serialized in the appbase form.
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

impl IntoOwned for CommentOptionsExtension<'_> {
    type Owned = CommentOptionsExtension<'static>;
    fn into_owned(self) -> CommentOptionsExtension<'static> {
        match self {
            CommentOptionsExtension::Beneficiaries(b) => {
                CommentOptionsExtension::Beneficiaries(b.into_owned())
            }
            CommentOptionsExtension::Other { tag, value } => {
                CommentOptionsExtension::Other { tag, value }
            }
        }
    }
}

impl Serialize for CommentOptionsExtension<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'b, 'a> {
            beneficiaries: &'b [Beneficiary<'a>],
        }
        let mut s = serializer.serialize_struct("CommentOptionsExtension", 2)?;
        match self {
            CommentOptionsExtension::Beneficiaries(b) => {
                s.serialize_field("type", "comment_payout_beneficiaries")?;
                s.serialize_field("value", &Body { beneficiaries: b })?;
            }
            CommentOptionsExtension::Other { tag, value } => {
                s.serialize_field("type", tag)?;
                s.serialize_field("value", value)?;
            }
        }
        s.end()
    }
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

impl Comment<'_> {
    /// Whether this is a root post rather than a reply.
    pub fn is_post(&self) -> bool {
        self.parent_author.is_empty()
    }

    /// Parses `json_metadata` as JSON (e.g. into `serde_json::Value`); fails on the empty
    /// string, which many comments carry.
    pub fn parse_metadata<'s, T: Deserialize<'s>>(&'s self) -> serde_json::Result<T> {
        serde_json::from_str(&self.json_metadata)
    }
}

impl CustomJson<'_> {
    /// Parses the `json` string as JSON, e.g. into `serde_json::Value` or an application's own
    /// type (which may borrow from `self`).
    pub fn parse_json<'s, T: Deserialize<'s>>(&'s self) -> serde_json::Result<T> {
        serde_json::from_str(&self.json)
    }
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

// --------------------------------------------------------------------- views --

views! {
    // ----------------------------------------------------------- content --

    /// `vote`: `voter` votes on the post or comment `author`/`permlink`.
    Vote => "vote" {
        /// The voting account.
        #[serde(borrow)] voter: Cow<'a, str>,
        /// The author of the voted post or comment.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink of the voted post or comment.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// Vote weight in basis points, -10000 (100 % downvote) to 10000; 0 removes the vote.
        weight: i16,
    }

    /// `comment`: creates or edits a post (empty `parent_author`) or a reply.
    Comment => "comment" {
        /// The parent's author; empty for a root post.
        #[serde(borrow)] parent_author: Cow<'a, str>,
        /// The parent's permlink; for a root post, the main tag (category).
        #[serde(borrow)] parent_permlink: Cow<'a, str>,
        /// The author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink, unique per author.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// The title (usually empty for replies).
        #[serde(borrow)] title: Cow<'a, str>,
        /// The body: markdown, or a diff-match-patch patch when editing.
        #[serde(borrow)] body: Cow<'a, str>,
        /// JSON text (tags, app, ...), often empty; see [`Comment::parse_metadata`].
        #[serde(borrow)] json_metadata: Cow<'a, str>,
    }

    /// `comment_options`: payout options and beneficiaries of a post or comment.
    CommentOptions => "comment_options" {
        /// The author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// The most the post may pay out (a debt amount; 0 declines payout).
        max_accepted_payout: Asset,
        /// Share of the author reward paid in debt tokens, in basis points
        /// (`percent_steem_dollars` on Steem, `percent_hbd` on Hive).
        #[serde(alias = "percent_steem_dollars", alias = "percent_hbd")] percent_debt: u16,
        /// Whether the post may be voted on.
        allow_votes: bool,
        /// Whether voters earn curation rewards.
        allow_curation_rewards: bool,
        /// Extensions, in practice at most one list of beneficiaries.
        #[serde(borrow)] extensions: Vec<CommentOptionsExtension<'a>>,
    }

    /// `delete_comment`: deletes a post or comment without votes or replies.
    DeleteComment => "delete_comment" {
        /// The author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
    }

    /// `custom_json`: an application message (follows, games, sidechains, ...).
    CustomJson => "custom_json" {
        /// Accounts that signed with their active authority.
        #[serde(borrow, deserialize_with = "borrowed_strs")] required_auths: Vec<Cow<'a, str>>,
        /// Accounts that signed with their posting authority.
        #[serde(borrow, deserialize_with = "borrowed_strs")] required_posting_auths: Vec<Cow<'a, str>>,
        /// The application id, e.g. `follow` or `ssc-mainnet-hive`.
        #[serde(borrow)] id: Cow<'a, str>,
        /// The message: JSON text inside a string; see [`CustomJson::parse_json`].
        #[serde(borrow)] json: Cow<'a, str>,
    }

    /// `custom`: an application message in binary, hex-encoded.
    Custom => "custom" {
        /// Accounts that signed with their active authority.
        #[serde(borrow, deserialize_with = "borrowed_strs")] required_auths: Vec<Cow<'a, str>>,
        /// The application id (a number).
        id: u16,
        /// The data, as hexadecimal digits.
        #[serde(borrow)] data: Cow<'a, str>,
    }

    // ---------------------------------------------------------- transfers --

    /// `transfer`: moves a liquid or debt amount between accounts.
    Transfer => "transfer" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The amount (STEEM/HIVE or SBD/HBD).
        amount: Asset,
        /// The memo; starts with `#` when encrypted.
        #[serde(borrow)] memo: Cow<'a, str>,
    }

    /// `recurrent_transfer` (Hive): sets up, changes or (with amount 0) ends a transfer
    /// repeated every `recurrence` hours.
    RecurrentTransfer => "recurrent_transfer" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The amount of each transfer.
        amount: Asset,
        /// The memo.
        #[serde(borrow)] memo: Cow<'a, str>,
        /// Hours between two transfers.
        recurrence: u16,
        /// How many transfers in all.
        executions: u16,
        /// Extensions (e.g. a pair id), as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `fill_recurrent_transfer` (virtual, Hive): one transfer of a recurrent transfer was made.
    FillRecurrentTransfer => "fill_recurrent_transfer" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The amount transferred.
        amount: Asset,
        /// The memo.
        #[serde(borrow)] memo: Cow<'a, str>,
        /// Transfers still to come.
        remaining_executions: u16,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `failed_recurrent_transfer` (virtual, Hive): a due recurrent transfer could not be made.
    FailedRecurrentTransfer => "failed_recurrent_transfer" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The amount that was due.
        amount: Asset,
        /// The memo.
        #[serde(borrow)] memo: Cow<'a, str>,
        /// Failures in a row.
        consecutive_failures: u8,
        /// Transfers still to come.
        remaining_executions: u16,
        /// Whether the recurrent transfer was deleted after too many failures.
        deleted: bool,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `transfer_to_vesting`: powers up liquid tokens into vesting shares.
    TransferToVesting => "transfer_to_vesting" {
        /// The account paying.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The account receiving the vesting shares; empty means `from`.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The liquid amount powered up.
        amount: Asset,
    }

    /// `transfer_to_vesting_completed` (virtual, Hive): the vesting shares a power up bought.
    TransferToVestingCompleted => "transfer_to_vesting_completed" {
        /// The account that paid.
        #[serde(borrow)] from_account: Cow<'a, str>,
        /// The account that received the shares.
        #[serde(borrow)] to_account: Cow<'a, str>,
        /// The liquid amount powered up (`hive_vested` on Hive).
        #[serde(alias = "hive_vested", alias = "steem_vested")] liquid_vested: Asset,
        /// The vesting shares received.
        vesting_shares_received: Asset,
    }

    /// `withdraw_vesting`: starts (or with 0, stops) a power down.
    WithdrawVesting => "withdraw_vesting" {
        /// The account powering down.
        #[serde(borrow)] account: Cow<'a, str>,
        /// The total VESTS to withdraw over the power-down period.
        vesting_shares: Asset,
    }

    /// `set_withdraw_vesting_route`: sends part of a power down to another account.
    SetWithdrawVestingRoute => "set_withdraw_vesting_route" {
        /// The account powering down.
        #[serde(borrow)] from_account: Cow<'a, str>,
        /// The account receiving part of it.
        #[serde(borrow)] to_account: Cow<'a, str>,
        /// The share routed, in basis points.
        percent: u16,
        /// Whether the routed part is powered up again at `to_account`.
        auto_vest: bool,
    }

    /// `fill_vesting_withdraw` (virtual): one weekly (daily on Hive) power-down payment.
    FillVestingWithdraw => "fill_vesting_withdraw" {
        /// The account powering down.
        #[serde(borrow)] from_account: Cow<'a, str>,
        /// The account paid.
        #[serde(borrow)] to_account: Cow<'a, str>,
        /// The vesting shares withdrawn.
        withdrawn: Asset,
        /// What was deposited: liquid tokens, or vesting shares when auto-vested.
        deposited: Asset,
    }

    /// `delegate_vesting_shares`: sets (not adds to) a delegation; 0 removes it.
    DelegateVestingShares => "delegate_vesting_shares" {
        /// The delegating account.
        #[serde(borrow)] delegator: Cow<'a, str>,
        /// The receiving account.
        #[serde(borrow)] delegatee: Cow<'a, str>,
        /// The new total delegation, in VESTS.
        vesting_shares: Asset,
    }

    /// `return_vesting_delegation` (virtual): a removed delegation returns to the delegator.
    ReturnVestingDelegation => "return_vesting_delegation" {
        /// The delegator.
        #[serde(borrow)] account: Cow<'a, str>,
        /// The vesting shares returned.
        vesting_shares: Asset,
    }

    /// `transfer_to_savings`: moves liquid or debt tokens into savings.
    TransferToSavings => "transfer_to_savings" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The account whose savings receive the amount.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The amount.
        amount: Asset,
        /// The memo.
        #[serde(borrow)] memo: Cow<'a, str>,
    }

    /// `transfer_from_savings`: starts a (3-day) withdrawal from savings.
    TransferFromSavings => "transfer_from_savings" {
        /// The account whose savings are withdrawn.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The request id, unique per `from`, for cancelling.
        request_id: u32,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The amount.
        amount: Asset,
        /// The memo.
        #[serde(borrow)] memo: Cow<'a, str>,
    }

    /// `cancel_transfer_from_savings`: cancels a pending withdrawal from savings.
    CancelTransferFromSavings => "cancel_transfer_from_savings" {
        /// The account whose withdrawal is cancelled.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The request id given to `transfer_from_savings`.
        request_id: u32,
    }

    /// `fill_transfer_from_savings` (virtual): a withdrawal from savings completed.
    FillTransferFromSavings => "fill_transfer_from_savings" {
        /// The account whose savings were withdrawn.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The amount.
        amount: Asset,
        /// The request id.
        request_id: u32,
        /// The memo.
        #[serde(borrow)] memo: Cow<'a, str>,
    }

    /// `interest` (virtual): interest paid on debt tokens.
    Interest => "interest" {
        /// The account paid.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The interest.
        interest: Asset,
        /// Whether it went to the savings balance (Hive; `false` where not sent).
        #[serde(default, alias = "is_saved_into_hbd_balance", alias = "is_saved_into_sbd_balance")]
        is_saved_into_debt_balance: bool,
    }

    // ------------------------------------------------------------- market --

    /// `limit_order_create`: offers `amount_to_sell` for at least `min_to_receive`.
    LimitOrderCreate => "limit_order_create" {
        /// The account selling.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The order id, unique per owner.
        orderid: u32,
        /// What is offered.
        amount_to_sell: Asset,
        /// The least accepted in return.
        min_to_receive: Asset,
        /// Whether the order is cancelled unless it fills at once.
        fill_or_kill: bool,
        /// When an unfilled order expires.
        expiration: Time,
    }

    /// `limit_order_create2`: like `limit_order_create`, with a price instead of a minimum.
    LimitOrderCreate2 => "limit_order_create2" {
        /// The account selling.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The order id, unique per owner.
        orderid: u32,
        /// What is offered.
        amount_to_sell: Asset,
        /// The price asked.
        exchange_rate: Price,
        /// Whether the order is cancelled unless it fills at once.
        fill_or_kill: bool,
        /// When an unfilled order expires.
        expiration: Time,
    }

    /// `limit_order_cancel`: cancels an open order.
    LimitOrderCancel => "limit_order_cancel" {
        /// The order's owner.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The order id.
        orderid: u32,
    }

    /// `limit_order_cancelled` (virtual, Hive): an order was cancelled or expired.
    LimitOrderCancelled => "limit_order_cancelled" {
        /// The order's owner.
        #[serde(borrow)] seller: Cow<'a, str>,
        /// The order id.
        orderid: u32,
        /// What the owner got back.
        amount_back: Asset,
    }

    /// `fill_order` (virtual): two orders matched, in whole or in part.
    FillOrder => "fill_order" {
        /// The owner of the order that was placed now.
        #[serde(borrow)] current_owner: Cow<'a, str>,
        /// Its id.
        current_orderid: u32,
        /// What it paid.
        current_pays: Asset,
        /// The owner of the order that was open.
        #[serde(borrow)] open_owner: Cow<'a, str>,
        /// Its id.
        open_orderid: u32,
        /// What it paid.
        open_pays: Asset,
    }

    /// `convert`: converts debt tokens to liquid ones at the median price, after a delay.
    Convert => "convert" {
        /// The account converting.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The request id, unique per owner.
        requestid: u32,
        /// The debt amount converted.
        amount: Asset,
    }

    /// `fill_convert_request` (virtual): a `convert` completed.
    FillConvertRequest => "fill_convert_request" {
        /// The account converting.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The request id.
        requestid: u32,
        /// What went in.
        amount_in: Asset,
        /// What came out.
        amount_out: Asset,
    }

    /// `collateralized_convert` (Hive): converts liquid tokens to debt ones against collateral.
    CollateralizedConvert => "collateralized_convert" {
        /// The account converting.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The request id, unique per owner.
        requestid: u32,
        /// The liquid collateral.
        amount: Asset,
    }

    /// `collateralized_convert_immediate_conversion` (virtual, Hive): the debt tokens a
    /// `collateralized_convert` paid at once.
    CollateralizedConvertImmediateConversion => "collateralized_convert_immediate_conversion" {
        /// The account converting.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The request id.
        requestid: u32,
        /// The debt tokens paid (`hbd_out` on Hive).
        #[serde(alias = "hbd_out", alias = "sbd_out")] debt_out: Asset,
    }

    /// `fill_collateralized_convert_request` (virtual, Hive): a `collateralized_convert` settled.
    FillCollateralizedConvertRequest => "fill_collateralized_convert_request" {
        /// The account converting.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The request id.
        requestid: u32,
        /// Collateral used.
        amount_in: Asset,
        /// Debt tokens paid.
        amount_out: Asset,
        /// Collateral returned.
        excess_collateral: Asset,
    }

    /// `feed_publish`: a witness's price feed.
    FeedPublish => "feed_publish" {
        /// The publishing witness.
        #[serde(borrow)] publisher: Cow<'a, str>,
        /// The price, e.g. base `0.440 SBD` per quote `1.000 STEEM`.
        exchange_rate: Price,
    }

    /// `liquidity_reward` (virtual, early chain): a market maker's reward.
    LiquidityReward => "liquidity_reward" {
        /// The account rewarded.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The reward.
        payout: Asset,
    }

    // ------------------------------------------------------------ rewards --

    /// `claim_reward_balance`: moves pending rewards into the account's balances.
    ClaimRewardBalance => "claim_reward_balance" {
        /// The claiming account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// Liquid reward claimed (`reward_steem` on Steem, `reward_hive` on Hive).
        #[serde(alias = "reward_steem", alias = "reward_hive")] reward_liquid: Asset,
        /// Debt reward claimed (`reward_sbd` on Steem, `reward_hbd` on Hive).
        #[serde(alias = "reward_sbd", alias = "reward_hbd")] reward_debt: Asset,
        /// Vesting reward claimed.
        reward_vests: Asset,
    }

    /// `author_reward` (virtual): what the author of a post or comment earned at payout.
    AuthorReward => "author_reward" {
        /// The author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// Debt tokens paid (`sbd_payout` on Steem, `hbd_payout` on Hive).
        #[serde(alias = "sbd_payout", alias = "hbd_payout")] debt_payout: Asset,
        /// Liquid tokens paid (`steem_payout` on Steem, `hive_payout` on Hive).
        #[serde(alias = "steem_payout", alias = "hive_payout")] liquid_payout: Asset,
        /// Vesting shares paid.
        vesting_payout: Asset,
        /// Vesting shares the curators got (Hive only).
        #[serde(default)] curators_vesting_payout: Option<Asset>,
        /// Whether the reward waits to be claimed (Hive; `false` where not sent).
        #[serde(default)] payout_must_be_claimed: bool,
    }

    /// `curation_reward` (virtual): what a voter earned for curating a post or comment.
    CurationReward => "curation_reward" {
        /// The voter rewarded.
        #[serde(borrow)] curator: Cow<'a, str>,
        /// The reward, in vesting shares.
        reward: Asset,
        /// The author of the voted post (`comment_author` on Steem).
        #[serde(borrow, alias = "comment_author")] author: Cow<'a, str>,
        /// Its permlink (`comment_permlink` on Steem).
        #[serde(borrow, alias = "comment_permlink")] permlink: Cow<'a, str>,
        /// Whether the reward waits to be claimed (Hive; `false` where not sent).
        #[serde(default)] payout_must_be_claimed: bool,
    }

    /// `comment_reward` (virtual): the total payout of a post or comment.
    CommentReward => "comment_reward" {
        /// The author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// The payout, in debt tokens.
        payout: Asset,
        /// The author's share, in the smallest debt unit (Hive only).
        #[serde(default)] author_rewards: Option<i64>,
        /// Total paid out (Hive only).
        #[serde(default)] total_payout_value: Option<Asset>,
        /// Paid to curators (Hive only).
        #[serde(default)] curator_payout_value: Option<Asset>,
        /// Paid to beneficiaries (Hive only).
        #[serde(default)] beneficiary_payout_value: Option<Asset>,
    }

    /// `comment_benefactor_reward` (virtual): what a beneficiary earned from a post.
    CommentBenefactorReward => "comment_benefactor_reward" {
        /// The beneficiary.
        #[serde(borrow)] benefactor: Cow<'a, str>,
        /// The post's author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The post's permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// Debt tokens paid.
        #[serde(alias = "sbd_payout", alias = "hbd_payout")] debt_payout: Asset,
        /// Liquid tokens paid.
        #[serde(alias = "steem_payout", alias = "hive_payout")] liquid_payout: Asset,
        /// Vesting shares paid.
        vesting_payout: Asset,
        /// Whether the reward waits to be claimed (Hive; `false` where not sent).
        #[serde(default)] payout_must_be_claimed: bool,
    }

    /// `effective_comment_vote` (virtual, Hive): the weight and pending payout a vote left.
    EffectiveCommentVote => "effective_comment_vote" {
        /// The voter.
        #[serde(borrow)] voter: Cow<'a, str>,
        /// The author voted on.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink voted on.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// The vote's curation weight.
        #[serde(deserialize_with = "int_or_str")] weight: u64,
        /// The reward shares the vote added (negative for a downvote).
        #[serde(deserialize_with = "int_or_str")] rshares: i64,
        /// The post's total vote weight after the vote.
        #[serde(deserialize_with = "int_or_str")] total_vote_weight: u64,
        /// The post's pending payout after the vote.
        pending_payout: Asset,
    }

    /// `comment_payout_update` (virtual): a post or comment was paid out.
    CommentPayoutUpdate => "comment_payout_update" {
        /// The author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
    }

    /// `ineffective_delete_comment` (virtual, Hive): a `delete_comment` that could not delete.
    IneffectiveDeleteComment => "ineffective_delete_comment" {
        /// The author.
        #[serde(borrow)] author: Cow<'a, str>,
        /// The permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
    }

    /// `producer_reward` (virtual): the reward for producing a block.
    ProducerReward => "producer_reward" {
        /// The witness that produced the block.
        #[serde(borrow)] producer: Cow<'a, str>,
        /// The reward, in VESTS (in liquid tokens in the chain's earliest blocks).
        vesting_shares: Asset,
    }

    /// `pow_reward` (virtual, early chain): a miner's reward.
    PowReward => "pow_reward" {
        /// The miner.
        #[serde(borrow)] worker: Cow<'a, str>,
        /// The reward.
        reward: Asset,
    }

    // ----------------------------------------------------------- accounts --

    /// `account_create`: creates an account, paying the fee.
    AccountCreate => "account_create" {
        /// The fee paid.
        fee: Asset,
        /// The paying account.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// The new account.
        #[serde(borrow)] new_account_name: Cow<'a, str>,
        /// Its owner authority.
        owner: Authority<'a>,
        /// Its active authority.
        active: Authority<'a>,
        /// Its posting authority.
        posting: Authority<'a>,
        /// Its memo key.
        #[serde(borrow)] memo_key: Cow<'a, str>,
        /// Its JSON metadata.
        #[serde(borrow)] json_metadata: Cow<'a, str>,
    }

    /// `account_create_with_delegation` (until HF20): creates an account with a delegation.
    AccountCreateWithDelegation => "account_create_with_delegation" {
        /// The fee paid.
        fee: Asset,
        /// The vesting shares delegated to the new account.
        delegation: Asset,
        /// The paying account.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// The new account.
        #[serde(borrow)] new_account_name: Cow<'a, str>,
        /// Its owner authority.
        owner: Authority<'a>,
        /// Its active authority.
        active: Authority<'a>,
        /// Its posting authority.
        posting: Authority<'a>,
        /// Its memo key.
        #[serde(borrow)] memo_key: Cow<'a, str>,
        /// Its JSON metadata.
        #[serde(borrow)] json_metadata: Cow<'a, str>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `claim_account`: claims an account-creation token (fee 0: paid with resource credits).
    ClaimAccount => "claim_account" {
        /// The claiming account.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// The fee paid.
        fee: Asset,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `create_claimed_account`: creates an account with a claimed token.
    CreateClaimedAccount => "create_claimed_account" {
        /// The account whose token is used.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// The new account.
        #[serde(borrow)] new_account_name: Cow<'a, str>,
        /// Its owner authority.
        owner: Authority<'a>,
        /// Its active authority.
        active: Authority<'a>,
        /// Its posting authority.
        posting: Authority<'a>,
        /// Its memo key.
        #[serde(borrow)] memo_key: Cow<'a, str>,
        /// Its JSON metadata.
        #[serde(borrow)] json_metadata: Cow<'a, str>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `account_created` (virtual, Hive): an account was created, by any of the ops that can.
    AccountCreated => "account_created" {
        /// The new account.
        #[serde(borrow)] new_account_name: Cow<'a, str>,
        /// The creating account.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// Vesting shares it starts with.
        initial_vesting_shares: Asset,
        /// Vesting shares delegated to it.
        initial_delegation: Asset,
    }

    /// `account_update`: changes an account's keys or metadata.
    AccountUpdate => "account_update" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// A new owner authority, if changed.
        #[serde(default)] owner: Option<Authority<'a>>,
        /// A new active authority, if changed.
        #[serde(default)] active: Option<Authority<'a>>,
        /// A new posting authority, if changed.
        #[serde(default)] posting: Option<Authority<'a>>,
        /// The memo key.
        #[serde(borrow)] memo_key: Cow<'a, str>,
        /// The JSON metadata.
        #[serde(borrow)] json_metadata: Cow<'a, str>,
    }

    /// `account_update2` (Hive): like `account_update`, with posting metadata; all optional.
    AccountUpdate2 => "account_update2" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// A new owner authority, if changed.
        #[serde(default)] owner: Option<Authority<'a>>,
        /// A new active authority, if changed.
        #[serde(default)] active: Option<Authority<'a>>,
        /// A new posting authority, if changed.
        #[serde(default)] posting: Option<Authority<'a>>,
        /// A new memo key, if changed.
        #[serde(default)] memo_key: Option<Cow<'a, str>>,
        /// The JSON metadata (empty: unchanged).
        #[serde(borrow, default)] json_metadata: Cow<'a, str>,
        /// The posting JSON metadata, where profiles live (empty: unchanged).
        #[serde(borrow, default)] posting_json_metadata: Cow<'a, str>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `change_recovery_account`: names a new recovery account (effective after 30 days).
    ChangeRecoveryAccount => "change_recovery_account" {
        /// The account.
        #[serde(borrow)] account_to_recover: Cow<'a, str>,
        /// Its new recovery account.
        #[serde(borrow)] new_recovery_account: Cow<'a, str>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `changed_recovery_account` (virtual, Hive): a recovery account change took effect.
    ChangedRecoveryAccount => "changed_recovery_account" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// Its former recovery account.
        #[serde(borrow)] old_recovery_account: Cow<'a, str>,
        /// Its new recovery account.
        #[serde(borrow)] new_recovery_account: Cow<'a, str>,
    }

    /// `request_account_recovery`: a recovery account starts recovering an account.
    RequestAccountRecovery => "request_account_recovery" {
        /// The recovery account.
        #[serde(borrow)] recovery_account: Cow<'a, str>,
        /// The account to recover.
        #[serde(borrow)] account_to_recover: Cow<'a, str>,
        /// The owner authority it will get.
        new_owner_authority: Authority<'a>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `recover_account`: completes an account recovery.
    RecoverAccount => "recover_account" {
        /// The account recovered.
        #[serde(borrow)] account_to_recover: Cow<'a, str>,
        /// Its new owner authority.
        new_owner_authority: Authority<'a>,
        /// A recent owner authority, proving ownership.
        recent_owner_authority: Authority<'a>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `decline_voting_rights`: gives up (or takes back the request to give up) voting.
    DeclineVotingRights => "decline_voting_rights" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// `true` to decline, `false` to cancel the request.
        decline: bool,
    }

    /// `declined_voting_rights` (virtual, Hive): an account's voting rights ended.
    DeclinedVotingRights => "declined_voting_rights" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
    }

    /// `delayed_voting` (virtual, Hive): newly vested shares gained governance weight.
    DelayedVoting => "delayed_voting" {
        /// The account.
        #[serde(borrow)] voter: Cow<'a, str>,
        /// The vesting shares (smallest unit) that now count.
        #[serde(deserialize_with = "int_or_str")] votes: u64,
    }

    /// `expired_account_notification` (virtual, Hive): governance votes of an inactive
    /// account expired.
    ExpiredAccountNotification => "expired_account_notification" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
    }

    // ---------------------------------------------------------- witnesses --

    /// `account_witness_vote`: approves or unapproves a witness.
    AccountWitnessVote => "account_witness_vote" {
        /// The voting account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// The witness voted for.
        #[serde(borrow)] witness: Cow<'a, str>,
        /// `true` to approve, `false` to remove the vote.
        approve: bool,
    }

    /// `account_witness_proxy`: delegates witness voting to another account.
    AccountWitnessProxy => "account_witness_proxy" {
        /// The account setting its proxy.
        #[serde(borrow)] account: Cow<'a, str>,
        /// The proxy; empty clears it.
        #[serde(borrow)] proxy: Cow<'a, str>,
    }

    /// `proxy_cleared` (virtual, Hive): an account's witness proxy was cleared.
    ProxyCleared => "proxy_cleared" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// The proxy it had.
        #[serde(borrow)] proxy: Cow<'a, str>,
    }

    /// `witness_update`: registers or updates a witness.
    WitnessUpdate => "witness_update" {
        /// The witness account.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// The witness's announcement URL.
        #[serde(borrow)] url: Cow<'a, str>,
        /// The block signing public key (`STM...`); all-zero disables the witness.
        #[serde(borrow)] block_signing_key: Cow<'a, str>,
        /// The chain properties the witness votes for.
        props: ChainProperties,
        /// The fee paid (always zero in practice).
        fee: Asset,
    }

    /// `witness_set_properties`: sets a witness's properties as serialized key-value pairs.
    WitnessSetProperties => "witness_set_properties" {
        /// The witness account.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// Property names and their values as hexadecimal binary serialization
        /// (e.g. `["key", "0287..."]`, `["hbd_interest_rate", "00000000"]`).
        props: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `shutdown_witness` (virtual, Hive): a witness was disabled.
    ShutdownWitness => "shutdown_witness" {
        /// The witness.
        #[serde(borrow)] owner: Cow<'a, str>,
    }

    /// `producer_missed` (virtual, Hive): a witness missed its block.
    ProducerMissed => "producer_missed" {
        /// The witness.
        #[serde(borrow)] producer: Cow<'a, str>,
    }

    /// `pow` (early chain): proof-of-work mining.
    Pow => "pow" {
        /// The miner.
        #[serde(borrow)] worker_account: Cow<'a, str>,
        /// The block the work is based on.
        #[serde(borrow)] block_id: Cow<'a, str>,
        /// The nonce.
        #[serde(deserialize_with = "int_or_str")] nonce: u64,
        /// The work, as sent.
        work: Value,
        /// The chain properties the miner votes for.
        props: ChainProperties,
    }

    /// `pow2` (early chain): proof-of-work mining, second scheme.
    Pow2 => "pow2" {
        /// The work, as sent.
        work: Value,
        /// The key of a new account, if the miner created one.
        #[serde(default)] new_owner_key: Option<Cow<'a, str>>,
        /// The chain properties the miner votes for.
        props: ChainProperties,
    }

    // ------------------------------------------------------------- escrow --

    /// `escrow_transfer`: locks funds with an agent until both parties agree.
    EscrowTransfer => "escrow_transfer" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The agent.
        #[serde(borrow)] agent: Cow<'a, str>,
        /// The escrow id, unique per sender.
        escrow_id: u32,
        /// Debt tokens locked.
        #[serde(alias = "sbd_amount", alias = "hbd_amount")] debt_amount: Asset,
        /// Liquid tokens locked.
        #[serde(alias = "steem_amount", alias = "hive_amount")] liquid_amount: Asset,
        /// The agent's fee.
        fee: Asset,
        /// When the recipient and agent must have approved.
        ratification_deadline: Time,
        /// When the escrow expires.
        escrow_expiration: Time,
        /// JSON metadata.
        #[serde(borrow)] json_meta: Cow<'a, str>,
    }

    /// `escrow_approve`: the recipient or agent approves (or rejects) an escrow.
    EscrowApprove => "escrow_approve" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The agent.
        #[serde(borrow)] agent: Cow<'a, str>,
        /// Who approves: `to` or `agent`.
        #[serde(borrow)] who: Cow<'a, str>,
        /// The escrow id.
        escrow_id: u32,
        /// Approved or rejected.
        approve: bool,
    }

    /// `escrow_approved` (virtual, Hive): both approved; the agent got its fee.
    EscrowApproved => "escrow_approved" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The agent.
        #[serde(borrow)] agent: Cow<'a, str>,
        /// The escrow id.
        escrow_id: u32,
        /// The agent's fee.
        fee: Asset,
    }

    /// `escrow_rejected` (virtual, Hive): an escrow was rejected; the funds went back.
    EscrowRejected => "escrow_rejected" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The agent.
        #[serde(borrow)] agent: Cow<'a, str>,
        /// The escrow id.
        escrow_id: u32,
        /// Debt tokens returned.
        #[serde(alias = "sbd_amount", alias = "hbd_amount")] debt_amount: Asset,
        /// Liquid tokens returned.
        #[serde(alias = "steem_amount", alias = "hive_amount")] liquid_amount: Asset,
        /// The fee returned.
        fee: Asset,
    }

    /// `escrow_dispute`: the sender or recipient asks the agent to decide.
    EscrowDispute => "escrow_dispute" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The agent.
        #[serde(borrow)] agent: Cow<'a, str>,
        /// Who disputes.
        #[serde(borrow)] who: Cow<'a, str>,
        /// The escrow id.
        escrow_id: u32,
    }

    /// `escrow_release`: releases escrowed funds to `receiver`.
    EscrowRelease => "escrow_release" {
        /// The sender.
        #[serde(borrow)] from: Cow<'a, str>,
        /// The recipient.
        #[serde(borrow)] to: Cow<'a, str>,
        /// The agent.
        #[serde(borrow)] agent: Cow<'a, str>,
        /// Who releases.
        #[serde(borrow)] who: Cow<'a, str>,
        /// Who gets the funds.
        #[serde(borrow)] receiver: Cow<'a, str>,
        /// The escrow id.
        escrow_id: u32,
        /// Debt tokens released.
        #[serde(alias = "sbd_amount", alias = "hbd_amount")] debt_amount: Asset,
        /// Liquid tokens released.
        #[serde(alias = "steem_amount", alias = "hive_amount")] liquid_amount: Asset,
    }

    // ---------------------------------------------------- proposals (DHF) --

    /// `create_proposal`: asks the treasury for daily pay.
    CreateProposal => "create_proposal" {
        /// The proposing account.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// The account to be paid.
        #[serde(borrow)] receiver: Cow<'a, str>,
        /// When pay starts.
        start_date: Time,
        /// When pay ends.
        end_date: Time,
        /// Pay per day.
        daily_pay: Asset,
        /// The title.
        #[serde(borrow)] subject: Cow<'a, str>,
        /// The permlink of the post describing it.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `update_proposal`: changes a proposal (pay may only go down).
    UpdateProposal => "update_proposal" {
        /// The proposal.
        proposal_id: u64,
        /// Its creator.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// The new pay per day.
        daily_pay: Asset,
        /// The new title.
        #[serde(borrow)] subject: Cow<'a, str>,
        /// The new permlink.
        #[serde(borrow)] permlink: Cow<'a, str>,
        /// Extensions (e.g. an earlier end date), as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `update_proposal_votes`: approves or unapproves proposals.
    UpdateProposalVotes => "update_proposal_votes" {
        /// The voting account.
        #[serde(borrow)] voter: Cow<'a, str>,
        /// The proposals.
        proposal_ids: Vec<u64>,
        /// Approve or remove the approval.
        approve: bool,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `remove_proposal`: removes proposals.
    RemoveProposal => "remove_proposal" {
        /// Their creator.
        #[serde(borrow)] proposal_owner: Cow<'a, str>,
        /// The proposals.
        proposal_ids: Vec<u64>,
        /// Extensions, as sent.
        #[serde(default)] extensions: Vec<Value>,
    }

    /// `proposal_pay` (virtual): the treasury paid a proposal.
    ProposalPay => "proposal_pay" {
        /// The proposal.
        proposal_id: u64,
        /// The account paid.
        #[serde(borrow)] receiver: Cow<'a, str>,
        /// The treasury account.
        #[serde(borrow, default)] payer: Cow<'a, str>,
        /// The payment.
        payment: Asset,
    }

    /// `proposal_fee` (virtual, Hive): the fee for creating a proposal.
    ProposalFee => "proposal_fee" {
        /// The proposing account.
        #[serde(borrow)] creator: Cow<'a, str>,
        /// The treasury account.
        #[serde(borrow)] treasury: Cow<'a, str>,
        /// The proposal.
        proposal_id: u64,
        /// The fee.
        fee: Asset,
    }

    /// `dhf_funding` (virtual, Hive): the treasury's share of new tokens.
    DhfFunding => "dhf_funding" {
        /// The treasury account.
        #[serde(borrow)] treasury: Cow<'a, str>,
        /// Debt tokens added.
        additional_funds: Asset,
    }

    /// `dhf_conversion` (virtual, Hive): the treasury converted liquid tokens it holds.
    DhfConversion => "dhf_conversion" {
        /// The treasury account.
        #[serde(borrow)] treasury: Cow<'a, str>,
        /// Liquid tokens converted.
        #[serde(alias = "hive_amount_in", alias = "steem_amount_in")] liquid_amount_in: Asset,
        /// Debt tokens obtained.
        #[serde(alias = "hbd_amount_out", alias = "sbd_amount_out")] debt_amount_out: Asset,
    }

    // --------------------------------------------------------- chain-wide --

    /// `hardfork_hive` (virtual, Hive): an account's funds were moved at Hive's creation.
    HardforkHive => "hardfork_hive" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// The treasury that received the funds.
        #[serde(borrow)] treasury: Cow<'a, str>,
        /// Accounts whose delegations to `account` were removed.
        #[serde(borrow, deserialize_with = "borrowed_strs")] other_affected_accounts: Vec<Cow<'a, str>>,
        /// Debt tokens moved.
        #[serde(alias = "hbd_transferred")] debt_transferred: Asset,
        /// Liquid tokens moved.
        #[serde(alias = "hive_transferred")] liquid_transferred: Asset,
        /// Vesting shares converted.
        vests_converted: Asset,
        /// Liquid tokens those shares were worth.
        #[serde(alias = "total_hive_from_vests")] total_liquid_from_vests: Asset,
    }

    /// `hardfork_hive_restore` (virtual, Hive): funds moved at Hive's creation were given back.
    HardforkHiveRestore => "hardfork_hive_restore" {
        /// The account.
        #[serde(borrow)] account: Cow<'a, str>,
        /// The treasury that returned the funds.
        #[serde(borrow)] treasury: Cow<'a, str>,
        /// Debt tokens returned.
        #[serde(alias = "hbd_transferred")] debt_transferred: Asset,
        /// Liquid tokens returned.
        #[serde(alias = "hive_transferred")] liquid_transferred: Asset,
    }

    /// `vesting_shares_split` (virtual, early chain): vesting shares were split a million to one.
    VestingSharesSplit => "vesting_shares_split" {
        /// The account.
        #[serde(borrow)] owner: Cow<'a, str>,
        /// Its shares before.
        vesting_shares_before_split: Asset,
        /// Its shares after.
        vesting_shares_after_split: Asset,
    }

    /// `system_warning` (virtual, Hive): a message from the chain itself.
    SystemWarning => "system_warning" {
        /// The message.
        #[serde(borrow)] message: Cow<'a, str>,
    }
}
