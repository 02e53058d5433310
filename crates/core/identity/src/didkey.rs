//! did:key for Ed25519 keys: `did:key:z` + base58btc(0xed 0x01 || public key).

use serde_json::{json, Value};
use tranche_types::PublicKey;

/// The multicodec prefix of an Ed25519 public key (varint 0xed).
const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// Why a text is not an Ed25519 did:key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidKeyError {
    /// Not of the form `did:key:<multibase>`.
    #[error("{0:?} is not a did:key DID (expected did:key:z6Mk...)")]
    NotDidKey(String),
    /// The multibase is not base58btc ('z') or does not decode.
    #[error(
        "the did:key's multibase value is not base58btc (a 'z' followed by base58 characters)"
    )]
    BadMultibase,
    /// The multicodec is not Ed25519's.
    #[error("the did:key's key is not an Ed25519 public key (multicodec 0xed01)")]
    WrongCodec,
    /// The key has the wrong length.
    #[error("the did:key's Ed25519 key is {0} bytes long; it must be 32")]
    WrongKeyLength(usize),
}

/// An Ed25519 did:key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DidKey {
    key: PublicKey,
    multibase: String,
}

impl DidKey {
    /// The did:key of a public key.
    pub fn from_public_key(key: &PublicKey) -> DidKey {
        let mut bytes = ED25519_PUB.to_vec();
        bytes.extend_from_slice(&key.0);
        DidKey {
            key: *key,
            multibase: format!("z{}", bs58::encode(bytes).into_string()),
        }
    }

    /// Parses `did:key:z...`, optionally followed by `#fragment`.
    pub fn parse(did: &str) -> Result<DidKey, DidKeyError> {
        let did = did.split('#').next().unwrap_or(did);
        let multibase = did
            .strip_prefix("did:key:")
            .ok_or_else(|| DidKeyError::NotDidKey(did.chars().take(80).collect()))?;
        let b58 = multibase
            .strip_prefix('z')
            .ok_or(DidKeyError::BadMultibase)?;
        let bytes = bs58::decode(b58)
            .into_vec()
            .map_err(|_| DidKeyError::BadMultibase)?;
        let key = bytes
            .strip_prefix(&ED25519_PUB[..])
            .ok_or(DidKeyError::WrongCodec)?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| DidKeyError::WrongKeyLength(key.len()))?;
        Ok(DidKey {
            key: PublicKey(key),
            multibase: multibase.to_string(),
        })
    }

    /// The DID, `did:key:z6Mk...`.
    pub fn did(&self) -> String {
        format!("did:key:{}", self.multibase)
    }

    /// The verification method id, `did:key:z6Mk...#z6Mk...`.
    pub fn verification_method(&self) -> String {
        format!("did:key:{}#{}", self.multibase, self.multibase)
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.key
    }

    /// The DID document the did:key resolves to (Multikey verification method).
    pub fn document(&self) -> Value {
        let did = self.did();
        let vm = self.verification_method();
        json!({
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": did,
            "verificationMethod": [{
                "id": vm,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": self.multibase,
            }],
            "authentication": [vm],
            "assertionMethod": [vm],
            "capabilityInvocation": [vm],
            "capabilityDelegation": [vm],
        })
    }
}

impl std::fmt::Display for DidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.did())
    }
}
