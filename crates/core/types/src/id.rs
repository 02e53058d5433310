//! Identifiers: organisations, DIDs, wallets, assets, tokens, requests,
//! orders, trades, and the chain itself.
//!
//! Text identifiers are short, printable and case-sensitive; each has a
//! character set and a length limit that decoding enforces, so an id read from
//! outside is always one a person can read back.

use crate::codec::{bytes_size, read_string, write_bytes};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Why a text could not become an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct IdError {
    /// Which kind of identifier was expected.
    pub kind: &'static str,
    /// The offending text, cut to a readable length.
    pub value: String,
    /// What a person should change.
    pub reason: String,
}

impl IdError {
    fn new(kind: &'static str, value: &str, reason: impl Into<String>) -> Self {
        let value: String = value.chars().take(80).collect();
        Self {
            kind,
            value,
            reason: reason.into(),
        }
    }
}

fn check_text(
    kind: &'static str,
    value: &str,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_desc: &str,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::new(kind, value, "must not be empty"));
    }
    if value.len() > max {
        return Err(IdError::new(
            kind,
            value,
            format!("is {} bytes long; at most {max} are allowed", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(IdError::new(
            kind,
            value,
            format!("character {c:?} is not allowed; use {allowed_desc}"),
        ));
    }
    Ok(())
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

const NAME_CHARS: &str = "letters, digits and - _ . :";

/// Declares a text identifier with a character set and a maximum length.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:expr, $allowed_desc:expr) => {
        $(#[$doc])*
        ///
        /// Shared, not owned: identifiers are copied into the keys of the
        /// state's tables, and a copy is then a count, not an allocation.
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl Ord for $name {
            #[inline]
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                crate::hash::byte_order(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl PartialOrd for $name {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// The longest identifier accepted, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Checks `value` and makes it an identifier.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_text($kind, &value, Self::MAX_LEN, $allowed, $allowed_desc)?;
                Ok(Self(value.into()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                write_bytes(self.0.as_bytes(), buf);
            }
        }

        impl EncodeSize for $name {
            fn encode_size(&self) -> usize {
                bytes_size(self.0.as_bytes())
            }
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                let s = read_string(buf, Self::MAX_LEN, $kind)?;
                Self::new(s).map_err(|_| CodecError::Invalid($kind, "characters outside its set"))
            }
        }
    };
}

text_id!(
    /// An organisation admitted to the network (a TSP, issuer, custodian,
    /// exchange, regulator, ...), e.g. `acme-tsp`.
    OrgId, "organisation id", 64, name_char, NAME_CHARS
);
text_id!(
    /// An asset registered with a TSP (F5-1), e.g. `A-17`.
    AssetId, "asset id", 64, name_char, NAME_CHARS
);
text_id!(
    /// A security token, or a cash token such as a CBDC, e.g. `SEOUL-TOWER-1`.
    TokenId, "token id", 64, name_char, NAME_CHARS
);
text_id!(
    /// An issuance or revocation request filed by a TSP (F5-4, F5-10).
    RequestId, "request id", 64, name_char, NAME_CHARS
);
text_id!(
    /// A free reference carried by a transfer, such as an exchange trade id (F6-7).
    Reference, "reference", 64, name_char, NAME_CHARS
);
text_id!(
    /// A W3C decentralized identifier (SR-5), e.g. `did:key:z6Mk...`. Only the
    /// DID goes on chain, never the personal data behind it.
    Did, "DID", 128, did_char, "a DID such as did:key:z6Mk... (letters, digits and . - _ : %)"
);
text_id!(
    /// The network a transaction is meant for, e.g. `tranche-devnet`. Every
    /// signature covers it, so a transaction signed for one chain is void on another.
    ChainId, "chain id", 32, chain_char, "lowercase letters, digits and -"
);

text_id!(
    /// The name of a document attached to a token (ERC-1643's job), e.g.
    /// `prospectus`.
    DocumentName, "document name", 64, name_char, NAME_CHARS
);
text_id!(
    /// Where a document can be read, e.g. `https://acme.example/prospectus.pdf`:
    /// printable ASCII without spaces; its digest, not its host, is what binds.
    DocumentUri, "document URI", 256, uri_char, "printable ASCII without spaces"
);

text_id!(
    /// A short label a person reads, such as a ballot's choice, e.g.
    /// `approve-sale`.
    Label, "label", 64, name_char, NAME_CHARS
);

fn uri_char(c: char) -> bool {
    c.is_ascii_graphic()
}

fn did_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')
}

fn chain_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

impl Did {
    /// Checks the `did:<method>:<id>` shape on top of the character set.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let did = Self::new(value)?;
        let mut parts = value.splitn(3, ':');
        let (scheme, method, rest) = (parts.next(), parts.next(), parts.next());
        match (scheme, method, rest) {
            (Some("did"), Some(m), Some(r)) if !m.is_empty() && !r.is_empty() => Ok(did),
            _ => Err(IdError::new(
                "DID",
                value,
                "must look like did:<method>:<identifier>",
            )),
        }
    }
}

/// Declares a numeric identifier assigned by a service (orders, trades).
macro_rules! num_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl Write for $name {
            fn write(&self, buf: &mut impl BufMut) {
                self.0.write(buf);
            }
        }

        impl FixedSize for $name {
            const SIZE: usize = u64::SIZE;
        }

        impl Read for $name {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                Ok(Self(u64::read_cfg(buf, &())?))
            }
        }
    };
}

num_id!(
    /// An order on an exchange's book, unique within that exchange.
    OrderId
);
num_id!(
    /// A trade on an exchange, unique within that exchange.
    TradeId
);

/// The human-readable prefix of a wallet address's text form.
pub const ADDRESS_HRP: &str = "tr";
/// The same, as the bech32 encoder and decoder take it.
const ADDRESS_HRP_PARSED: bech32::Hrp = bech32::Hrp::parse_unchecked(ADDRESS_HRP);

/// A wallet: 20 bytes derived from an ed25519 public key. Its text form is
/// bech32m (`tr1...`), whose checksum catches any mistyped character.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalletAddress(pub [u8; 20]);

impl Ord for WalletAddress {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        crate::hash::byte_order(&self.0, &other.0)
    }
}

impl PartialOrd for WalletAddress {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl WalletAddress {
    /// The address of the wallet controlled by `public_key`: the first 20
    /// bytes of SHA-256 over a fixed prefix and the key.
    pub fn from_public_key(public_key: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"tranche/address/v1")
            .chain_update(public_key)
            .finalize();
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[..20]);
        Self(out)
    }

    /// Parses the `tr1...` text form, checking its checksum.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        use bech32::primitives::decode::CheckedHrpstring;
        let checked = CheckedHrpstring::new::<bech32::Bech32m>(text).map_err(|e| {
            // Only bech32m is ours; say so when it is the older variant.
            if CheckedHrpstring::new::<bech32::Bech32>(text).is_ok() {
                IdError::new(
                    "wallet address",
                    text,
                    "uses the wrong checksum variant; addresses are bech32m",
                )
            } else {
                IdError::new(
                    "wallet address",
                    text,
                    format!("not a valid checksummed address ({e}); check for a typo"),
                )
            }
        })?;
        if checked.hrp() != ADDRESS_HRP_PARSED {
            return Err(IdError::new(
                "wallet address",
                text,
                format!("must start with {ADDRESS_HRP}1"),
            ));
        }
        let mut bytes = [0u8; 20];
        let mut n = 0;
        for b in checked.byte_iter() {
            if n == bytes.len() {
                n += 1;
                break;
            }
            bytes[n] = b;
            n += 1;
        }
        if n != bytes.len() {
            return Err(IdError::new(
                "wallet address",
                text,
                "must carry exactly 20 bytes",
            ));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for WalletAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_lower_to_fmt::<bech32::Bech32m, _>(f, ADDRESS_HRP_PARSED, &self.0)
            .map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for WalletAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WalletAddress({self})")
    }
}

impl FromStr for WalletAddress {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl Serialize for WalletAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WalletAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Write for WalletAddress {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl FixedSize for WalletAddress {
    const SIZE: usize = 20;
}

impl Read for WalletAddress {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(<[u8; 20]>::read_cfg(buf, &())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ids_check_charset_and_length() {
        assert!(OrgId::new("acme-tsp").is_ok());
        assert!(OrgId::new("").is_err());
        assert!(OrgId::new("has space").is_err());
        assert!(OrgId::new("x".repeat(65)).is_err());
        assert!(ChainId::new("Tranche").is_err(), "chain ids are lowercase");
        let err = TokenId::new("bad/token").unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
    }

    #[test]
    fn dids_must_have_a_method_and_identifier() {
        assert!(Did::parse("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK").is_ok());
        assert!(Did::parse("did:key").is_err());
        assert!(Did::parse("key:z6Mk").is_err());
    }

    #[test]
    fn address_text_form_round_trips_and_catches_typos() {
        let addr = WalletAddress::from_public_key(&[7u8; 32]);
        let text = addr.to_string();
        assert!(text.starts_with("tr1"));
        assert_eq!(WalletAddress::parse(&text).unwrap(), addr);
        // Change one data character: the checksum must catch it.
        let mut chars: Vec<char> = text.chars().collect();
        chars[5] = if chars[5] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(WalletAddress::parse(&typo).is_err());
    }

    #[test]
    fn bech32_non_m_addresses_are_refused() {
        let hrp = bech32::Hrp::parse(ADDRESS_HRP).unwrap();
        let old = bech32::encode::<bech32::Bech32>(hrp, &[1u8; 20]).unwrap();
        let e = WalletAddress::parse(&old).unwrap_err();
        assert!(e.to_string().contains("wrong checksum variant"), "{e}");
    }

    #[test]
    fn addresses_of_another_prefix_or_length_are_refused() {
        let other = bech32::Hrp::parse("xx").unwrap();
        let text = bech32::encode::<bech32::Bech32m>(other, &[1u8; 20]).unwrap();
        assert!(WalletAddress::parse(&text).is_err());
        let hrp = bech32::Hrp::parse(ADDRESS_HRP).unwrap();
        for len in [19, 21, 32] {
            let text = bech32::encode::<bech32::Bech32m>(hrp, &vec![1u8; len]).unwrap();
            let e = WalletAddress::parse(&text).unwrap_err();
            assert!(e.to_string().contains("exactly 20 bytes"), "{len}: {e}");
        }
        // All-uppercase is the same address (bech32 allows it); mixed case
        // is not.
        let text = WalletAddress([9u8; 20]).to_string();
        assert_eq!(
            WalletAddress::parse(&text.to_uppercase()).unwrap(),
            WalletAddress([9u8; 20])
        );
        let mixed = format!("{}{}", &text[..6].to_uppercase(), &text[6..]);
        assert!(WalletAddress::parse(&mixed).is_err());
        // The encoder of record agrees with the text form.
        let addr = WalletAddress([9u8; 20]);
        assert_eq!(
            addr.to_string(),
            bech32::encode::<bech32::Bech32m>(hrp, &[9u8; 20]).unwrap()
        );
    }
}
