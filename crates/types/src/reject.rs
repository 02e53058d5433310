//! Business rejections: a stable numeric code, a stable name, and a message a
//! person can act on. A rejected transaction is data in its receipt, not an
//! error: the block that carries it is still valid.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! reject_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $summary:literal; )*) => {
        /// Why a transaction was refused. Codes and names never change meaning
        /// once released; new reasons get new codes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u16)]
        pub enum RejectCode {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl RejectCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [RejectCode] = &[$(RejectCode::$variant,)*];

            /// The stable numeric code.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// The stable name, e.g. `WRONG_CHAIN`.
            pub fn name(self) -> &'static str {
                match self { $(RejectCode::$variant => $name,)* }
            }

            /// What the code means and what to do about it, in general terms;
            /// a [`Rejection`] adds the specifics.
            pub fn summary(self) -> &'static str {
                match self { $(RejectCode::$variant => $summary,)* }
            }

            /// The code with this number, if there is one.
            pub fn from_code(code: u16) -> Option<RejectCode> {
                match code { $($code => Some(RejectCode::$variant),)* _ => None }
            }

            /// The code with this name, if there is one.
            pub fn from_name(name: &str) -> Option<RejectCode> {
                match name { $($name => Some(RejectCode::$variant),)* _ => None }
            }
        }
    };
}

reject_codes! {
    /// The transaction names another chain.
    WrongChain = 1, "WRONG_CHAIN", "the transaction was signed for another chain; sign it again with this chain's id";
    /// The signature does not verify for the signer's key.
    BadSignature = 2, "BAD_SIGNATURE", "the signature does not match the transaction and its signer; sign it again";
    /// The block time is past the transaction's validity bound.
    Expired = 3, "EXPIRED", "the transaction's valid_until has passed; build and sign a new one";
    /// The nonce is not the signer's next one.
    BadNonce = 4, "BAD_NONCE", "the nonce is not the signer's next one; query the account and use its next nonce";
    /// The signer's wallet lacks the tokens moved.
    InsufficientBalance = 5, "INSUFFICIENT_BALANCE", "the wallet holds fewer tokens than the amount; lower the amount";
    /// The token is not known to the chain.
    UnknownToken = 6, "UNKNOWN_TOKEN", "no token with this id has been issued; check the token id";
    /// The amount is zero where a positive amount is required.
    ZeroAmount = 7, "ZERO_AMOUNT", "the amount must be at least one unit";
    /// An amount would overflow.
    Overflow = 8, "OVERFLOW", "the amounts involved are too large to be added up";
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl Serialize for RejectCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RejectCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RejectCode::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reject code {s:?}")))
    }
}

impl Write for RejectCode {
    fn write(&self, buf: &mut impl BufMut) {
        self.code().write(buf);
    }
}

impl FixedSize for RejectCode {
    const SIZE: usize = u16::SIZE;
}

impl Read for RejectCode {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let code = u16::read_cfg(buf, &())?;
        RejectCode::from_code(code).ok_or(CodecError::Invalid("reject code", "unknown code"))
    }
}

/// A rejection: its code and a message that names the specifics,
/// e.g. `wallet tr1... holds 3 of token T-1; 5 were to be moved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The stable code.
    pub code: RejectCode,
    /// The specifics, for a person.
    pub message: String,
}

impl Rejection {
    /// The longest message kept, in bytes; longer ones are cut.
    pub const MESSAGE_MAX: usize = 512;

    /// A rejection with `code` and `message`, cut to [`Self::MESSAGE_MAX`].
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > Self::MESSAGE_MAX {
            let mut cut = Self::MESSAGE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Self { code, message }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.name())
    }
}

impl std::error::Error for Rejection {}

impl Write for Rejection {
    fn write(&self, buf: &mut impl BufMut) {
        self.code.write(buf);
        crate::codec::write_bytes(self.message.as_bytes(), buf);
    }
}

impl EncodeSize for Rejection {
    fn encode_size(&self) -> usize {
        RejectCode::SIZE + crate::codec::bytes_size(self.message.as_bytes())
    }
}

impl Read for Rejection {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let code = RejectCode::read_cfg(buf, &())?;
        let message = crate::codec::read_string(buf, Self::MESSAGE_MAX, "rejection message")?;
        Ok(Self { code, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut codes = BTreeSet::new();
        let mut names = BTreeSet::new();
        for c in RejectCode::ALL {
            assert!(codes.insert(c.code()), "duplicate code {}", c.code());
            assert!(names.insert(c.name()), "duplicate name {}", c.name());
            assert_eq!(RejectCode::from_code(c.code()), Some(*c));
            assert_eq!(RejectCode::from_name(c.name()), Some(*c));
            assert!(!c.summary().is_empty());
        }
        assert_eq!(RejectCode::from_code(0), None);
    }

    #[test]
    fn released_codes_keep_their_numbers() {
        assert_eq!(RejectCode::WrongChain.code(), 1);
        assert_eq!(RejectCode::BadSignature.code(), 2);
        assert_eq!(RejectCode::Expired.code(), 3);
        assert_eq!(RejectCode::BadNonce.code(), 4);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let r = Rejection::new(RejectCode::Expired, "é".repeat(400));
        assert!(r.message.len() <= Rejection::MESSAGE_MAX);
        assert!(r.message.chars().all(|c| c == 'é'));
    }
}
