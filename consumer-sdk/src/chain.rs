//! Which chain a ring carries: the chain id nodes report (`get_version().chain_id`) and a short
//! name.
//!
//! Steem's chain id is 32 zero bytes; Hive's is `beeab0de` followed by 28 zero bytes. Any other
//! id (a testnet, a private chain) is accepted with a name the operator gives it.

use std::fmt;

use crate::sync::Ordering;
use std::str::FromStr;

/// Why a chain id or chain name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Not `steem`, `hive` or 64 hexadecimal digits.
    #[error("{0:?} is not a chain: expected steem, hive or a chain id of 64 hexadecimal digits")]
    Unknown(String),
    /// A chain name must be 1 to 16 of `a-z 0-9 _ -`.
    #[error("{0:?} is not a chain name: 1 to 16 of a-z, 0-9, '_' and '-'")]
    Name(String),
}

/// A chain id: the 32 bytes a node reports as `chain_id` (64 hexadecimal digits in JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub [u8; 32]);

impl ChainId {
    /// Steem's chain id: 32 zero bytes.
    pub const STEEM: ChainId = ChainId([0; 32]);
    /// Hive's chain id: `beeab0de` followed by zeros.
    pub const HIVE: ChainId = {
        let mut id = [0; 32];
        id[0] = 0xbe;
        id[1] = 0xea;
        id[2] = 0xb0;
        id[3] = 0xde;
        ChainId(id)
    };

    /// Parses 64 hexadecimal digits (either case).
    pub fn from_hex(hex: &str) -> Result<ChainId, ChainError> {
        // Exactly the digits: the decoder would also take a `0x` prefix.
        if hex.len() != 64 {
            return Err(ChainError::Unknown(hex.into()));
        }
        let mut id = [0; 32];
        const_hex::decode_to_slice(hex, &mut id).map_err(|_| ChainError::Unknown(hex.into()))?;
        Ok(ChainId(id))
    }
}

impl fmt::Display for ChainId {
    /// 64 lower-case hexadecimal digits, as nodes print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({self})")
    }
}

impl FromStr for ChainId {
    type Err = ChainError;
    fn from_str(s: &str) -> Result<ChainId, ChainError> {
        ChainId::from_hex(s)
    }
}

/// Bytes a chain name may take.
pub const CHAIN_NAME_MAX: usize = 16;

/// A chain: its id and a short lower-case name (`steem`, `hive`, or one an operator chose for
/// another chain). Two chains are the same when their ids are; the name is for people (log
/// lines, subject prefixes, the asset spelling of [`Chain::is_hive`]).
#[derive(Clone, Copy)]
pub struct Chain {
    id: ChainId,
    name_len: u8,
    name: [u8; CHAIN_NAME_MAX],
}

impl Chain {
    /// Steem mainnet.
    pub const STEEM: Chain = Chain::known(ChainId::STEEM, "steem");
    /// Hive mainnet.
    pub const HIVE: Chain = Chain::known(ChainId::HIVE, "hive");

    const fn known(id: ChainId, name: &str) -> Chain {
        let mut buf = [0; CHAIN_NAME_MAX];
        let bytes = name.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            buf[i] = bytes[i];
            i += 1;
        }
        Chain {
            id,
            name_len: bytes.len() as u8,
            name: buf,
        }
    }

    /// A chain with the given id and name (1 to 16 of `a-z 0-9 _ -`).
    pub fn new(id: ChainId, name: &str) -> Result<Chain, ChainError> {
        let valid = (1..=CHAIN_NAME_MAX).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(ChainError::Name(name.into()));
        }
        Ok(Chain::known(id, name))
    }

    /// The chain with this id: `steem` or `hive` for theirs, otherwise named `chain-` and the
    /// id's first 8 hexadecimal digits.
    pub fn from_id(id: ChainId) -> Chain {
        match id {
            ChainId::STEEM => Chain::STEEM,
            ChainId::HIVE => Chain::HIVE,
            _ => {
                let hex = id.to_string();
                Chain::known(id, &format!("chain-{}", &hex[..8]))
            }
        }
    }

    /// The chain id.
    pub fn id(&self) -> ChainId {
        self.id
    }

    /// The name: `steem`, `hive` or another chain's.
    pub fn name(&self) -> &str {
        // The name is only ever built from a validated ASCII `&str`.
        std::str::from_utf8(&self.name[..usize::from(self.name_len)]).unwrap_or("?")
    }

    /// Whether this is Steem mainnet.
    pub fn is_steem(&self) -> bool {
        self.id == ChainId::STEEM
    }

    /// Whether this is Hive mainnet.
    pub fn is_hive(&self) -> bool {
        self.id == ChainId::HIVE
    }

    /// The 48 bytes a ring header stores: the id, then the name NUL-padded to 16 bytes.
    pub fn to_bytes(&self) -> [u8; 32 + CHAIN_NAME_MAX] {
        let mut out = [0; 32 + CHAIN_NAME_MAX];
        out[..32].copy_from_slice(&self.id.0);
        out[32..].copy_from_slice(&self.name);
        out
    }

    /// Reads [`Chain::to_bytes`]'s form: `Ok(None)` when no chain was recorded (an all-zero
    /// name), an error when the name is not a valid chain name.
    pub fn from_bytes(bytes: &[u8; 32 + CHAIN_NAME_MAX]) -> Result<Option<Chain>, ChainError> {
        let name_bytes = &bytes[32..];
        let len = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(CHAIN_NAME_MAX);
        if len == 0 {
            return if name_bytes.iter().all(|&b| b == 0) {
                Ok(None)
            } else {
                Err(ChainError::Name(
                    String::from_utf8_lossy(name_bytes).into_owned(),
                ))
            };
        }
        // NUL padding only: no name bytes after the first NUL.
        let name = std::str::from_utf8(&name_bytes[..len])
            .ok()
            .filter(|_| name_bytes[len..].iter().all(|&b| b == 0))
            .ok_or_else(|| ChainError::Name(String::from_utf8_lossy(name_bytes).into_owned()))?;
        let mut id = [0; 32];
        id.copy_from_slice(&bytes[..32]);
        Chain::new(ChainId(id), name).map(Some)
    }
}

impl PartialEq for Chain {
    fn eq(&self, other: &Chain) -> bool {
        self.id == other.id
    }
}

impl Eq for Chain {}

impl std::hash::Hash for Chain {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("name", &self.name())
            .field("id", &self.id)
            .finish()
    }
}

impl FromStr for Chain {
    type Err = ChainError;
    /// `steem`, `hive` (any case) or a chain id of 64 hexadecimal digits.
    fn from_str(s: &str) -> Result<Chain, ChainError> {
        if s.eq_ignore_ascii_case("steem") {
            Ok(Chain::STEEM)
        } else if s.eq_ignore_ascii_case("hive") {
            Ok(Chain::HIVE)
        } else {
            ChainId::from_hex(s)
                .map(Chain::from_id)
                .map_err(|_| ChainError::Unknown(s.into()))
        }
    }
}

/// Stores `chain` in a ring header's chain words ([`crate::layout::off::CHAIN_ID`] ..
/// [`crate::layout::off::CHAIN_NAME`] + 16): the id and the second name word first, the first
/// name word last, so a reader that sees a name sees all of it.
#[cfg_attr(not(feature = "writer"), allow(dead_code))]
#[cfg(feature = "writer")]
pub(crate) fn store_in_header(words: crate::sync::WordsMut<'_>, chain: &Chain) {
    let bytes = chain.to_bytes();
    let word = |i: usize| u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let first = crate::layout::off::CHAIN_ID / 8;
    let name0 = (crate::layout::off::CHAIN_NAME - crate::layout::off::CHAIN_ID) / 8;
    for i in (0..bytes.len() / 8).filter(|&i| i != name0) {
        // Relaxed: published by the Release store of the first name word below.
        words.get(first + i).store(word(i), Ordering::Relaxed);
    }
    // SYNC POINT chain: Release pairs with the Acquire in `load_from_header`.
    words
        .get(first + name0)
        .store(word(name0), Ordering::Release);
}

/// Reads the chain a ring header records: `Ok(None)` when none is recorded.
pub(crate) fn load_from_header(words: crate::sync::Words<'_>) -> Result<Option<Chain>, ChainError> {
    let first = crate::layout::off::CHAIN_ID / 8;
    let name0 = (crate::layout::off::CHAIN_NAME - crate::layout::off::CHAIN_ID) / 8;
    // SYNC POINT chain: Acquire pairs with the Release in `store_in_header`; a non-zero first
    // name word means every other chain word is stored.
    let head = words.get(first + name0).load(Ordering::Acquire);
    if head == 0 {
        return Ok(None);
    }
    let mut bytes = [0u8; 32 + CHAIN_NAME_MAX];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        let value = if i == name0 {
            head
        } else {
            // Relaxed: ordered after the Acquire load above.
            words.get(first + i).load(Ordering::Relaxed)
        };
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    Chain::from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_parse_and_print() {
        let hive = "beeab0de00000000000000000000000000000000000000000000000000000000";
        assert_eq!(ChainId::from_hex(hive), Ok(ChainId::HIVE));
        assert_eq!(ChainId::HIVE.to_string(), hive);
        assert_eq!(ChainId::from_hex(&"0".repeat(64)), Ok(ChainId::STEEM));
        assert_eq!(hive.to_uppercase().parse::<Chain>(), Ok(Chain::HIVE));
        assert_eq!("Steem".parse::<Chain>().unwrap().name(), "steem");
        assert_ne!(Chain::STEEM, Chain::HIVE);
        assert!(Chain::HIVE.is_hive() && !Chain::HIVE.is_steem());
    }

    #[test]
    fn other_ids_get_a_derived_name() {
        let id = "18dcf0a285365fc58b71f18b3d3fec954aa0c141c44e4e5cb4cf777b9eab274e";
        let chain: Chain = id.parse().unwrap();
        assert_eq!(chain.name(), "chain-18dcf0a2");
        assert_eq!(chain.id().to_string(), id);
    }

    #[test]
    fn bad_input_is_named() {
        for bad in [
            "",
            "stem",
            &"0".repeat(63),
            &"g".repeat(64),
            &"0".repeat(65),
            &format!("0x{}", "0".repeat(64)),
            &format!("+f{}", "0".repeat(62)),
        ] {
            let err = bad.parse::<Chain>().unwrap_err();
            assert_eq!(err, ChainError::Unknown(bad.to_string()), "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
        for bad in ["", "Steem", "a b", "seventeen-chars-x", "é"] {
            assert_eq!(
                Chain::new(ChainId::STEEM, bad),
                Err(ChainError::Name(bad.into()))
            );
        }
    }

    #[test]
    fn header_bytes_round_trip() {
        for chain in [
            Chain::STEEM,
            Chain::HIVE,
            Chain::new(ChainId([7; 32]), "my-test_1").unwrap(),
        ] {
            let bytes = chain.to_bytes();
            let back = Chain::from_bytes(&bytes).unwrap().unwrap();
            assert_eq!(back, chain);
            assert_eq!(back.name(), chain.name());
        }
        assert_eq!(Chain::from_bytes(&[0; 48]), Ok(None));
        let mut garbage = Chain::HIVE.to_bytes();
        garbage[32 + 6] = b'x'; // a name byte after the NUL padding began
        assert!(Chain::from_bytes(&garbage).is_err());
        let mut garbage = [0; 48];
        garbage[40] = b'a'; // no name, stray byte
        assert!(Chain::from_bytes(&garbage).is_err());
        let mut garbage = Chain::STEEM.to_bytes();
        garbage[32] = b'S';
        assert!(Chain::from_bytes(&garbage).is_err());
    }
}
