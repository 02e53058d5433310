//! Helpers shared by the canonical encoding of every type in this crate.
//!
//! The canonical encoding is commonware-codec's: fixed-width big-endian
//! integers, minimal varint lengths, one-byte enum tags. Everything read from
//! outside goes through [`decode`], which bounds every length and demands that
//! the whole input be consumed, so one value has exactly one encoding.

use bytes::Buf as _;
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

/// Reads a count (at most `max`) and that many values, reserving room only
/// for as many as the bytes left could hold (each takes at least
/// `bytes_min`): a peer's message claiming a large count in a few bytes
/// costs an allocation in proportion to its size, not to the count.
pub fn read_counted<T: Read<Cfg = ()>>(
    buf: &mut impl Buf,
    max: usize,
    bytes_min: usize,
) -> Result<Vec<T>, CodecError> {
    let len = usize::read_cfg(buf, &(0..=max).into())?;
    let mut values = Vec::with_capacity(len.min(buf.remaining() / bytes_min));
    for _ in 0..len {
        values.push(T::read_cfg(buf, &())?);
    }
    Ok(values)
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

pub use bytes::BufMut;

/// A vector with at most `N` items, checked when decoded or read from JSON.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct BoundedVec<T, const N: usize>(pub Vec<T>);

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T, const N: usize> BoundedVec<T, N> {
    /// The most items allowed.
    pub const MAX: usize = N;

    /// Wraps `items` if there are at most `N` of them.
    pub fn new(items: Vec<T>) -> Result<Self, Vec<T>> {
        if items.len() > N {
            return Err(items);
        }
        Ok(Self(items))
    }
}

impl<T, const N: usize> std::ops::Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        let len = items.len();
        Self::new(items)
            .map_err(|_| serde::de::Error::custom(format!("{len} items; at most {N} are allowed")))
    }
}

impl<T: Write, const N: usize> Write for BoundedVec<T, N> {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl<T: EncodeSize, const N: usize> EncodeSize for BoundedVec<T, N> {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}

impl<T: Read<Cfg = ()>, const N: usize> Read for BoundedVec<T, N> {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(Vec::<T>::read_cfg(buf, &((0..=N).into(), ()))?))
    }
}

/// Declares a struct whose canonical encoding is its fields in order, and
/// whose JSON form is its fields by name. Every field's type must read
/// without configuration, so every bound lives in the type.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }

        impl $crate::commonware_codec::Write for $name {
            fn write(&self, _buf: &mut impl $crate::codec::BufMut) {
                $( $crate::commonware_codec::Write::write(&self.$field, _buf); )*
            }
        }

        impl $crate::commonware_codec::EncodeSize for $name {
            fn encode_size(&self) -> usize {
                0 $( + $crate::commonware_codec::EncodeSize::encode_size(&self.$field) )*
            }
        }

        impl $crate::commonware_codec::Read for $name {
            type Cfg = ();
            fn read_cfg(
                _buf: &mut impl $crate::commonware_codec::Buf,
                _: &(),
            ) -> Result<Self, $crate::commonware_codec::Error> {
                Ok(Self { $( $field: <$ty as $crate::commonware_codec::Read>::read_cfg(_buf, &())?, )* })
            }
        }
    };
}

/// Declares an enum of records, each with a stable one-byte tag; its JSON form
/// carries the variant's name in `"type"`.
#[macro_export]
macro_rules! tagged {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident($inner:ty) = $tag:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant($inner)),* }

        impl $name {
            /// The variant's stable tag.
            pub fn tag(&self) -> u8 {
                match self { $( Self::$variant(_) => $tag, )* }
            }
        }

        impl $crate::commonware_codec::Write for $name {
            fn write(&self, buf: &mut impl $crate::codec::BufMut) {
                match self {
                    $( Self::$variant(x) => {
                        $crate::commonware_codec::Write::write(&($tag as u8), buf);
                        $crate::commonware_codec::Write::write(x, buf);
                    } )*
                }
            }
        }

        impl $crate::commonware_codec::EncodeSize for $name {
            fn encode_size(&self) -> usize {
                1 + match self { $( Self::$variant(x) => $crate::commonware_codec::EncodeSize::encode_size(x), )* }
            }
        }

        impl $crate::commonware_codec::Read for $name {
            type Cfg = ();
            fn read_cfg(
                buf: &mut impl $crate::commonware_codec::Buf,
                _: &(),
            ) -> Result<Self, $crate::commonware_codec::Error> {
                match <u8 as $crate::commonware_codec::Read>::read_cfg(buf, &())? {
                    $( $tag => Ok(Self::$variant(<$inner as $crate::commonware_codec::Read>::read_cfg(buf, &())?)), )*
                    other => Err($crate::commonware_codec::Error::InvalidEnum(other)),
                }
            }
        }
    };
}

/// Declares a field-less enum with stable one-byte codes, snake_case in JSON.
#[macro_export]
macro_rules! unit_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $variant = $code),* }

        impl $name {
            /// Every variant.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
        }

        impl $crate::commonware_codec::Write for $name {
            fn write(&self, buf: &mut impl $crate::codec::BufMut) {
                $crate::commonware_codec::Write::write(&(*self as u8), buf);
            }
        }

        impl $crate::commonware_codec::FixedSize for $name {
            const SIZE: usize = 1;
        }

        impl $crate::commonware_codec::Read for $name {
            type Cfg = ();
            fn read_cfg(
                buf: &mut impl $crate::commonware_codec::Buf,
                _: &(),
            ) -> Result<Self, $crate::commonware_codec::Error> {
                match <u8 as $crate::commonware_codec::Read>::read_cfg(buf, &())? {
                    $( $code => Ok($name::$variant), )*
                    other => Err($crate::commonware_codec::Error::InvalidEnum(other)),
                }
            }
        }
    };
}
