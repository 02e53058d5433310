//! Fixed-size byte values: SHA-256 digests, ed25519 public keys and signatures.
//! Their text form is lowercase hex.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why a hex text could not become a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: expected {len} bytes as {hex_len} hex digits, got {got:?}")]
pub struct HexError {
    kind: &'static str,
    len: usize,
    hex_len: usize,
    got: String,
}

/// Byte strings' order (a shorter one first when it is a prefix of the
/// other), compared sixteen bytes at a time as big-endian integers, which
/// is the same order: the state's maps compare keys of hashes, public keys,
/// addresses and names on every lookup, and a call to `memcmp` per
/// comparison cost more than the lookup's other work.
#[inline]
pub(crate) fn byte_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut xs, mut ys) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in (&mut xs).zip(&mut ys) {
        let x = u128::from_be_bytes(x.try_into().expect("a chunk of sixteen bytes"));
        let y = u128::from_be_bytes(y.try_into().expect("a chunk of sixteen bytes"));
        if x != y {
            return x.cmp(&y);
        }
    }
    // Past the common whole chunks: the rest of each, byte by byte.
    let done = a.len().min(b.len()) / 16 * 16;
    for (x, y) in a[done..].iter().zip(&b[done..]) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        impl Ord for $name {
            #[inline]
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                byte_order(&self.0, &other.0)
            }
        }

        impl PartialOrd for $name {
            #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// Parses lowercase or uppercase hex.
            pub fn from_hex(text: &str) -> Result<Self, HexError> {
                let mut out = [0u8; $len];
                // Exactly the digits: const-hex alone would take a `0x`.
                let digits = text.len() == 2 * $len && !text.starts_with("0x");
                if !digits || const_hex::decode_to_slice(text, &mut out).is_err() {
                    return Err(HexError {
                        kind: $kind,
                        len: $len,
                        hex_len: 2 * $len,
                        got: text.chars().take(2 * $len + 8).collect(),
                    });
                }
                Ok(Self(out))
            }

            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                const_hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl std::str::FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                buf.put_slice(&self.0);
            }
        }

        impl FixedSize for $name {
            const SIZE: usize = $len;
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                Ok(Self(<[u8; $len]>::read_cfg(buf, &())?))
            }
        }
    };
}

fixed_bytes!(
    /// A SHA-256 digest.
    Hash, 32, "hash"
);
fixed_bytes!(
    /// An ed25519 public key as its 32 bytes (checked when a signature is verified).
    PublicKey, 32, "public key"
);
fixed_bytes!(
    /// An ed25519 signature as its 64 bytes.
    Signature, 64, "signature"
);

impl Hash {
    /// The all-zero hash, used as the parent of the first block.
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// SHA-256 of `label` followed by `bytes`. The label keeps digests of
    /// different kinds of object apart even if their bytes coincide.
    pub fn digest(label: &[u8], bytes: &[u8]) -> Hash {
        let d = Sha256::new()
            .chain_update(label)
            .chain_update(bytes)
            .finalize();
        Hash(d.into())
    }

    /// A [`Hash::digest`] of `label` and whatever is then written to it,
    /// for bytes made piece by piece (a large JSON document hashed as it
    /// is written, without holding it whole).
    pub fn digester(label: &[u8]) -> Digester {
        Digester(Sha256::new().chain_update(label))
    }
}

/// A digest being written: see [`Hash::digester`].
#[derive(Debug, Clone)]
pub struct Digester(Sha256);

impl Digester {
    /// The digest of everything written.
    pub fn finish(self) -> Hash {
        Hash(self.0.finalize().into())
    }
}

impl std::io::Write for Digester {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Signature {
    /// The all-zero signature: a place held for a signature yet to be made.
    pub fn unset() -> Signature {
        Signature([0u8; 64])
    }
}

impl PublicKey {
    /// The wallet this key controls.
    pub fn address(&self) -> crate::WalletAddress {
        crate::WalletAddress::from_public_key(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_written_in_pieces_is_the_digest_of_the_whole() {
        use std::io::Write as _;
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut d = Hash::digester(b"label");
        for piece in bytes.chunks(7) {
            d.write_all(piece).unwrap();
        }
        assert_eq!(d.finish(), Hash::digest(b"label", &bytes));
        assert_ne!(
            Hash::digester(b"other").finish(),
            Hash::digest(b"label", &[])
        );
    }

    #[test]
    fn hex_is_exactly_the_digits() {
        let h = Hash([0xab; 32]);
        assert_eq!(h.to_hex(), "ab".repeat(32));
        assert_eq!(Hash::from_hex(&"ab".repeat(32)).unwrap(), h);
        assert_eq!(Hash::from_hex(&"AB".repeat(32)).unwrap(), h);
        for bad in [
            format!("0x{}", "ab".repeat(32)),
            "ab".repeat(31),
            "ab".repeat(33),
            format!("{}zz", "ab".repeat(31)),
        ] {
            assert!(Hash::from_hex(&bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// The order of hashes, keys and addresses is their bytes' order,
        /// which the state's maps, and so its encoding, rely on.
        #[test]
        fn byte_arrays_order_as_their_bytes(
            a in proptest::array::uniform32(0u8..4),
            b in proptest::array::uniform32(0u8..4),
            cut in 0usize..20,
        ) {
            proptest::prop_assert_eq!(Hash(a).cmp(&Hash(b)), a.cmp(&b));
            let mut x = [0u8; 20];
            let mut y = [0u8; 20];
            x.copy_from_slice(&a[..20]);
            y.copy_from_slice(&a[..20]);
            y[cut..].copy_from_slice(&b[cut..20]);
            proptest::prop_assert_eq!(
                crate::WalletAddress(x).cmp(&crate::WalletAddress(y)),
                x.cmp(&y)
            );
            let (ta, tb) = (&a[..cut + 4], &b[..32 - cut]);
            proptest::prop_assert_eq!(byte_order(ta, tb), ta.cmp(tb));
            proptest::prop_assert_eq!(byte_order(ta, &a[..cut]), ta.cmp(&a[..cut]));
            proptest::prop_assert_eq!(byte_order(&a, &a), std::cmp::Ordering::Equal);
            let mut s = [0u8; 64];
            s[cut * 3..cut * 3 + 4].copy_from_slice(&b[..4]);
            proptest::prop_assert_eq!(Signature(s).cmp(&Signature([0; 64])), s.cmp(&[0; 64]));
        }
    }
}
