//! Helpers shared by the canonical encoding of every type in this crate.
//!
//! The canonical encoding is commonware-codec's: fixed-width big-endian
//! integers, minimal varint lengths, one-byte enum tags. Everything read from
//! outside goes through [`decode`], which bounds every length and demands that
//! the whole input be consumed, so one value has exactly one encoding.

use bytes::{Buf as _, BufMut};
use commonware_codec::{Buf, Copying, Decode, EncodeSize, Error as CodecError, Read, Write};

/// Why bytes from outside could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub struct DecodeError {
    /// The type that was being decoded.
    pub what: &'static str,
    /// What was wrong with the bytes.
    pub reason: String,
}

/// Decodes a whole value of `T` from untrusted bytes: bounded, never panicking,
/// and refusing trailing bytes.
pub fn decode<T: Decode<Cfg = ()>>(what: &'static str, bytes: &[u8]) -> Result<T, DecodeError> {
    T::decode_cfg(Copying(bytes), &()).map_err(|e| DecodeError {
        what,
        reason: e.to_string(),
    })
}

/// Writes a length-prefixed byte string.
pub(crate) fn write_bytes(bytes: &[u8], buf: &mut impl BufMut) {
    bytes.len().write(buf);
    buf.put_slice(bytes);
}

/// The encoded size of a length-prefixed byte string.
pub(crate) fn bytes_size(bytes: &[u8]) -> usize {
    bytes.len().encode_size() + bytes.len()
}

/// Reads a length-prefixed byte string of at most `max` bytes.
pub(crate) fn read_bytes(buf: &mut impl Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    let len = usize::read_cfg(buf, &(0..=max).into())?;
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut out = vec![0u8; len];
    buf.copy_to_slice(&mut out);
    Ok(out)
}

/// Reads a length-prefixed UTF-8 string of at most `max` bytes.
pub(crate) fn read_string(
    buf: &mut impl Buf,
    max: usize,
    what: &'static str,
) -> Result<String, CodecError> {
    let bytes = read_bytes(buf, max)?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid(what, "not UTF-8"))
}
