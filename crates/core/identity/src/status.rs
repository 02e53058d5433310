//! Bitstring Status List (W3C): a credential's revocation bit, published by
//! its issuer as a GZIP-compressed, base64url-encoded bitstring.

use base64::Engine as _;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::{Read as _, Write as _};

/// The smallest list the standard recommends: 16 KiB of bits (131,072 entries),
/// so a list does not reveal much about any one holder.
pub const LIST_BITS_MIN: usize = 131_072;
/// The largest list decoded, so a hostile list cannot exhaust memory.
pub const LIST_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Why a status list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid status list: {0}")]
pub struct StatusListError(pub String);

/// A list of status bits; bit `i` is bit `7 - i % 8` of byte `i / 8`
/// (the first index is the leftmost bit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusList {
    bits: Vec<u8>,
}

impl StatusList {
    /// A list of `LIST_BITS_MIN` clear bits.
    pub fn new() -> StatusList {
        StatusList {
            bits: vec![0; LIST_BITS_MIN / 8],
        }
    }

    /// How many entries the list has.
    pub fn len(&self) -> usize {
        self.bits.len() * 8
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// Whether entry `index` is set; `None` past the end.
    pub fn get(&self, index: usize) -> Option<bool> {
        let byte = self.bits.get(index / 8)?;
        Some(byte & (0x80 >> (index % 8)) != 0)
    }

    /// Sets or clears entry `index`; false if it is past the end.
    pub fn set(&mut self, index: usize, value: bool) -> bool {
        let Some(byte) = self.bits.get_mut(index / 8) else {
            return false;
        };
        if value {
            *byte |= 0x80 >> (index % 8);
        } else {
            *byte &= !(0x80 >> (index % 8));
        }
        true
    }

    /// The `encodedList` value: multibase base64url (no padding) of the GZIP'd bits.
    pub fn encode(&self) -> String {
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&self.bits)
            .expect("writing to memory cannot fail");
        let zipped = gz.finish().expect("writing to memory cannot fail");
        format!(
            "u{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(zipped)
        )
    }

    /// Reads an `encodedList` value, bounded in size.
    pub fn decode(encoded: &str) -> Result<StatusList, StatusListError> {
        let b64 = encoded.strip_prefix('u').ok_or_else(|| {
            StatusListError("encodedList must be multibase base64url ('u')".into())
        })?;
        let zipped = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| StatusListError(format!("encodedList is not base64url: {e}")))?;
        let mut bits = Vec::new();
        GzDecoder::new(&zipped[..])
            .take(LIST_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bits)
            .map_err(|e| StatusListError(format!("encodedList is not GZIP: {e}")))?;
        if bits.len() > LIST_BYTES_MAX {
            return Err(StatusListError(format!(
                "the list is larger than {LIST_BYTES_MAX} bytes"
            )));
        }
        Ok(StatusList { bits })
    }
}

impl Default for StatusList {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_through_the_encoding() {
        let mut list = StatusList::new();
        assert!(list.set(0, true));
        assert!(list.set(94_567, true));
        assert!(!list.set(LIST_BITS_MIN, true));
        let back = StatusList::decode(&list.encode()).unwrap();
        assert_eq!(back.get(0), Some(true));
        assert_eq!(back.get(1), Some(false));
        assert_eq!(back.get(94_567), Some(true));
        assert_eq!(back.get(LIST_BITS_MIN), None);
        assert_eq!(back.bits[0], 0x80, "index 0 is the leftmost bit");
        assert!(StatusList::decode("zabc").is_err());
        assert!(StatusList::decode("u!!!").is_err());
    }
}
