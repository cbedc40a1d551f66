//! Typed views of Steem and Hive operations, and [`Operation`], the enum over all of them.
//!
//! # Decoding an op
//!
//! A ring record carries one operation *body*: the JSON object holding the operation's fields,
//! as the node sent it. In the legacy (condenser) encoding `["vote",{...}]` the body is the
//! `{...}` object; in the appbase encoding `{"type":"vote_operation","value":{...}}` it is the
//! `value` object. The operation type travels beside the body as a topic, the type name without
//! its `_operation` suffix (see [`topic_of`] and [`OpView::TOPIC`]).
//!
//! Three ways to decode, from the most to the least specific:
//!
//! - [`crate::Op::view`]`::<Transfer>()`: one view; fails with [`ViewError::Topic`], naming
//!   both topics, when the op is of another type.
//! - [`crate::Op::operation`]: an [`Operation`], one variant per view, [`Operation::Other`]
//!   (the raw JSON) for op types without one; for bots that `match` on several types.
//! - [`crate::Op::decode`]`::<T>()`: any `Deserialize` type of your own.
//!
//! Every view decodes from a body in either encoding and from either chain:
//!
//! - Fields that Steem and Hive name differently (`reward_steem` / `reward_hive`,
//!   `percent_steem_dollars` / `percent_hbd`, `sbd_payout` / `hbd_payout`, ...) are accepted
//!   under both names and stored under a chain-neutral one: *liquid* for STEEM/HIVE, *debt* for
//!   SBD/HBD. `Serialize` writes the neutral names, which decoding accepts too.
//! - Unknown fields are ignored, so additions in newer nodes do not break bots; fields only
//!   one chain or only newer nodes send are `Option`s or default to `false` / empty.
//! - Strings are [`Cow<'a, str>`](std::borrow::Cow): borrowed from the body when the JSON
//!   string has no escapes, owned when it has. `into_owned()` copies them, for keeping a view
//!   beyond the op it came from (in a collection, across an `await`, in another thread).
//! - Nested JSON inside strings (`json_metadata`, `custom_json.json`) is kept as the string;
//!   [`Comment::parse_metadata`] and [`CustomJson::parse_json`] parse it on demand.
//!   `comment_options.extensions` is decoded into [`CommentOptionsExtension`] from all three
//!   encodings of beneficiaries; any other extension is kept as `serde_json::Value`.
//! - Times (`expiration`, ...) are [`Time`]: seconds, UTC, `Display` in RFC 3339, convertible
//!   to `SystemTime`.
//!
//! [`TYPED_TOPICS`] lists the op types with a view; [`KNOWN_TOPICS`] every op type either chain
//! has (the rest of them stay raw), so [`is_known_topic`] can flag a typo in a topic filter.
//!
//! # Assets
//!
//! [`Asset`] reads both the legacy text form `"1.000 STEEM"` (also `HIVE`, `SBD`, `HBD`,
//! `VESTS` and the testnet `TESTS`, `TBD`) and the appbase NAI form
//! `{"amount":"1000","precision":3,"nai":"@@000000021"}`, into an integer `amount` in the
//! smallest unit, a `precision` (number of decimals, at most 18) and a [`Symbol`], whose
//! [`AssetKind`] says *liquid*, *debt*, *vests* or *other*.
//!
//! A NAI names no chain: `@@000000021` is STEEM on Steem and HIVE on Hive. Ops read through a
//! [`crate::Subscriber`] are decoded in the ring's chain ([`crate::Subscriber::chain`]), so
//! every liquid and debt asset, in either form, is spelled as that chain spells it. Elsewhere,
//! [`with_chain`] sets the chain for a decode; without one, text keeps its spelling and a NAI
//! stays a NAI. Symbols compare by spelling, so `HIVE` and `STEEM` are never equal.
//!
//! Assets add and subtract checked ([`Asset::checked_add`]), order within one symbol and
//! precision, and sum per symbol into [`Totals`].
//!
//! # Example
//!
//! ```
//! use consumer_sdk::Chain;
//! use consumer_sdk::ops::{topic_of, with_chain, AssetKind, OpView, Transfer};
//!
//! let legacy = br#"{"from":"alice","to":"bob","amount":"1.500 HIVE","memo":"thanks \"bob\""}"#;
//! let appbase = br#"{"from":"alice","to":"bob","memo":"thanks \"bob\"",
//!     "amount":{"amount":"1500","precision":3,"nai":"@@000000021"}}"#;
//! let a: Transfer = serde_json::from_slice(legacy)?;
//! let b: Transfer = with_chain(Some(Chain::HIVE), || serde_json::from_slice(appbase))?;
//! assert_eq!(a, b);
//! assert_eq!((a.amount.amount, a.amount.kind()), (1500, AssetKind::Liquid));
//! assert_eq!(b.amount.to_string(), "1.500 HIVE");
//! assert_eq!(a.memo, r#"thanks "bob""#);
//! assert_eq!(topic_of("transfer_operation"), Transfer::TOPIC);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::borrow::Cow;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

mod asset;
mod time;
mod views;

pub use asset::{Asset, AssetError, AssetKind, Symbol, Totals, with_chain};
pub use time::{Time, TimeError};
pub use views::*;

/// Strips a trailing `_operation` from an appbase operation type, giving the topic
/// (`"vote_operation"` → `"vote"`); legacy names pass through unchanged.
pub fn topic_of(op_type: &str) -> &str {
    op_type.strip_suffix("_operation").unwrap_or(op_type)
}

/// A typed view of one operation body, decodable from either encoding.
pub trait OpView<'a>: Deserialize<'a> + Serialize {
    /// The operation type without the `_operation` suffix, e.g. `"vote"`.
    const TOPIC: &'static str;
}

/// Decoding an op into a view failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The op is of another type than the view asked for.
    #[error("this op is a {found:?} op, not a {expected:?} op")]
    Topic {
        /// The view's topic.
        expected: &'static str,
        /// The op's topic.
        found: String,
    },
    /// The body does not fit the view of its topic.
    #[error("{topic:?} op: {source}")]
    Json {
        /// The op's topic.
        topic: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
}

/// Every operation type of Steem and Hive (both chains' protocol definitions, regular and
/// virtual, past and present), as topics.
pub const KNOWN_TOPICS: &[&str] = &[
    // Operations in transactions.
    "vote",
    "comment",
    "transfer",
    "transfer_to_vesting",
    "withdraw_vesting",
    "limit_order_create",
    "limit_order_cancel",
    "feed_publish",
    "convert",
    "account_create",
    "account_update",
    "witness_update",
    "account_witness_vote",
    "account_witness_proxy",
    "pow",
    "custom",
    "report_over_production",
    "delete_comment",
    "custom_json",
    "comment_options",
    "set_withdraw_vesting_route",
    "limit_order_create2",
    "claim_account",
    "create_claimed_account",
    "request_account_recovery",
    "recover_account",
    "change_recovery_account",
    "escrow_transfer",
    "escrow_dispute",
    "escrow_release",
    "pow2",
    "escrow_approve",
    "transfer_to_savings",
    "transfer_from_savings",
    "cancel_transfer_from_savings",
    "custom_binary",
    "decline_voting_rights",
    "reset_account",
    "set_reset_account",
    "claim_reward_balance",
    "delegate_vesting_shares",
    "account_create_with_delegation",
    "witness_set_properties",
    "account_update2",
    "create_proposal",
    "update_proposal_votes",
    "remove_proposal",
    "update_proposal",
    "collateralized_convert",
    "recurrent_transfer",
    "claim_reward_balance2",
    "smt_setup",
    "smt_setup_emissions",
    "smt_set_setup_parameters",
    "smt_set_runtime_parameters",
    "smt_create",
    "smt_contribute",
    // Virtual operations.
    "fill_convert_request",
    "author_reward",
    "curation_reward",
    "comment_reward",
    "liquidity_reward",
    "interest",
    "fill_vesting_withdraw",
    "fill_order",
    "shutdown_witness",
    "fill_transfer_from_savings",
    "hardfork",
    "comment_payout_update",
    "return_vesting_delegation",
    "comment_benefactor_reward",
    "producer_reward",
    "clear_null_account_balance",
    "proposal_pay",
    "sps_fund",
    "sps_convert",
    "dhf_funding",
    "dhf_conversion",
    "hardfork_hive",
    "hardfork_hive_restore",
    "delayed_voting",
    "consolidate_treasury_balance",
    "effective_comment_vote",
    "ineffective_delete_comment",
    "expired_account_notification",
    "changed_recovery_account",
    "transfer_to_vesting_completed",
    "pow_reward",
    "vesting_shares_split",
    "account_created",
    "fill_collateralized_convert_request",
    "system_warning",
    "fill_recurrent_transfer",
    "failed_recurrent_transfer",
    "limit_order_cancelled",
    "producer_missed",
    "proposal_fee",
    "collateralized_convert_immediate_conversion",
    "escrow_approved",
    "escrow_rejected",
    "proxy_cleared",
    "declined_voting_rights",
];

/// Where the virtual operations start in [`KNOWN_TOPICS`].
const FIRST_VIRTUAL: usize = 57;

/// The virtual operation types of [`KNOWN_TOPICS`]: produced by the chain itself (rewards,
/// fills, payouts, ...), never signed in a transaction.
pub const VIRTUAL_TOPICS: &[&str] = KNOWN_TOPICS.split_at(FIRST_VIRTUAL).1;

/// Whether either chain has an op type of this topic (a name without the `_operation`
/// suffix). A topic filter naming anything else never matches.
pub fn is_known_topic(topic: &str) -> bool {
    KNOWN_TOPICS.contains(&topic)
}

/// Whether this topic is a virtual operation type of either chain ([`VIRTUAL_TOPICS`]).
pub fn is_virtual_topic(topic: &str) -> bool {
    VIRTUAL_TOPICS.contains(&topic)
}

/// A string borrowed from the input when it has no escapes.
#[derive(Deserialize)]
pub(crate) struct Str<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// Deserializes a list of strings, borrowing each where possible (a plain `Vec<Cow<str>>`
/// would allocate every element).
fn borrowed_strs<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Cow<'a, str>>, D::Error> {
    let strs = Vec::<Str<'a>>::deserialize(deserializer)?;
    Ok(strs.into_iter().map(|s| s.0).collect())
}

/// Deserializes an integer written as a JSON number or as a string of digits (the legacy
/// encoding writes 64-bit integers as strings).
fn int_or_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr,
{
    struct IntVisitor<T>(std::marker::PhantomData<T>);

    impl<T: TryFrom<u64> + TryFrom<i64> + std::str::FromStr> serde::de::Visitor<'_> for IntVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer, as a number or a string of digits")
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<T, E> {
            T::try_from(n).map_err(|_| E::custom(format_args!("integer {n} out of range")))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<T, E> {
            T::try_from(n).map_err(|_| E::custom(format_args!("integer {n} out of range")))
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            s.parse()
                .map_err(|_| E::custom(format_args!("{s:?} is not an integer in range")))
        }
    }

    deserializer.deserialize_any(IntVisitor(std::marker::PhantomData))
}

#[cfg(test)]
mod tests;
