//! A tree node's key packed into one fixed-size value: its version and its
//! nibble path, inline. The tree holds millions of nodes; a key kept this
//! way costs no allocation of its own and compares as plain bytes, where
//! jmt's `NodeKey` keeps its path on the heap.

use jmt::storage::NodeKey;

/// Nibbles in the longest path: a key hash's 256 bits.
const NIBBLES_MAX: usize = 64;

/// A node's key: its version, then its path (`nibbles` nibbles, high half
/// of each byte first, the rest zero). Equal exactly when the `NodeKey`s
/// are; ordered by version first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PackedKey {
    version: u64,
    nibbles: u8,
    path: [u8; NIBBLES_MAX / 2],
}

impl PackedKey {
    /// The packed form of `key`.
    pub(crate) fn of(key: &NodeKey) -> PackedKey {
        let p = key.nibble_path();
        let nibbles = p.num_nibbles();
        assert!(nibbles <= NIBBLES_MAX, "a tree path is at most 64 nibbles");
        let mut path = [0u8; NIBBLES_MAX / 2];
        for i in 0..nibbles {
            let nibble = u8::from(p.get_nibble(i));
            path[i / 2] |= if i % 2 == 0 { nibble << 4 } else { nibble };
        }
        PackedKey {
            version: key.version(),
            nibbles: nibbles as u8,
            path,
        }
    }

    /// The key of the root of `version`'s tree (the empty path).
    pub(crate) fn root(version: u64) -> PackedKey {
        PackedKey {
            version,
            nibbles: 0,
            path: [0; NIBBLES_MAX / 2],
        }
    }

    fn path_len(nibbles: usize) -> usize {
        nibbles.div_ceil(2)
    }

    /// The key as a store keeps it: the version big-endian (so a store's
    /// keys sort by version and each update's new nodes go in at the end),
    /// then the path as borsh encodes a `NibblePath`: its nibble count
    /// (u64), its byte count (u32), its bytes, little-endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let len = Self::path_len(self.nibbles.into());
        let mut out = Vec::with_capacity(8 + 8 + 4 + len);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&u64::from(self.nibbles).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&self.path[..len]);
        out
    }

    /// Reads a key [`Self::encode`] wrote; anything else is refused.
    pub(crate) fn decode(bytes: &[u8]) -> Result<PackedKey, String> {
        let refuse = |why: &str| format!("a tree node's key: {why}");
        let (version, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| refuse("shorter than its version"))?;
        let (nibbles, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| refuse("no nibble count"))?;
        let (count, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| refuse("no byte count"))?;
        let nibbles = u64::from_le_bytes(*nibbles);
        if nibbles > NIBBLES_MAX as u64 {
            return Err(refuse("a path longer than 64 nibbles"));
        }
        let nibbles = nibbles as usize;
        let len = Self::path_len(nibbles);
        if u32::from_le_bytes(*count) as usize != len || rest.len() != len {
            return Err(refuse("a path whose bytes are not its nibbles'"));
        }
        if nibbles % 2 == 1 && rest[len - 1] & 0x0f != 0 {
            return Err(refuse("an odd path whose last half byte is not zero"));
        }
        let mut path = [0u8; NIBBLES_MAX / 2];
        path[..len].copy_from_slice(rest);
        Ok(PackedKey {
            version: u64::from_be_bytes(*version),
            nibbles: nibbles as u8,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmt::storage::NibblePath;
    use proptest::prelude::*;

    fn node_key(version: u64, nibbles: &[u8]) -> NodeKey {
        NodeKey::new(
            version,
            NibblePath::from_iter(nibbles.iter().map(|n| (*n).into())),
        )
    }

    /// What the store kept before keys were packed: the version, then
    /// borsh's encoding of the path.
    fn as_stored_before(key: &NodeKey) -> Vec<u8> {
        let mut out = key.version().to_be_bytes().to_vec();
        borsh::to_writer(&mut out, key.nibble_path()).expect("into memory");
        out
    }

    proptest! {
        #[test]
        fn a_packed_key_is_stored_as_before_reads_back_and_compares_as_its_node_key(
            a in (any::<u64>(), proptest::collection::vec(0u8..16, 0..=64)),
            b in (any::<u64>(), proptest::collection::vec(0u8..16, 0..=64)),
        ) {
            let (ka, kb) = (node_key(a.0, &a.1), node_key(b.0, &b.1));
            let (pa, pb) = (PackedKey::of(&ka), PackedKey::of(&kb));
            prop_assert_eq!(pa.encode(), as_stored_before(&ka));
            prop_assert_eq!(PackedKey::decode(&pa.encode()), Ok(pa));
            prop_assert_eq!(pa == pb, ka == kb);
            prop_assert_eq!(PackedKey::of(&node_key(a.0, &[])), PackedKey::root(a.0));
        }
    }

    #[test]
    fn a_malformed_stored_key_is_refused() {
        let good = PackedKey::of(&node_key(7, &[1, 2, 3])).encode();
        assert!(PackedKey::decode(&good).is_ok());
        for cut in 0..good.len() {
            assert!(PackedKey::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(PackedKey::decode(&longer).is_err());
        // The last half byte of an odd path must be zero.
        let mut odd = good.clone();
        *odd.last_mut().expect("bytes") |= 1;
        assert!(PackedKey::decode(&odd).is_err());
        // More than 64 nibbles, and a byte count that is not the nibbles'.
        let mut long = good.clone();
        long[8..16].copy_from_slice(&65u64.to_le_bytes());
        assert!(PackedKey::decode(&long).is_err());
        let mut count = good;
        count[16..20].copy_from_slice(&1u32.to_le_bytes());
        assert!(PackedKey::decode(&count).is_err());
    }
}
