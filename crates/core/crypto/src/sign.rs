//! Domain-separated ed25519 signatures.
//!
//! Every signed message is `TRANCHE/v1/<domain>\0 || chain id || body`, so a
//! signature made for one kind of message (a transaction, a holder's
//! custody authorization, an exchange report, ...) or for one chain can never be
//! replayed as another.

use commonware_codec::Encode;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use tranche_types::commonware_codec;
use tranche_types::{ChainId, PublicKey, Signature, WalletAddress};
use zeroize::Zeroizing;

/// The kind of message a signature is for. Each has its own prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    /// A transaction, signed by its signer.
    Transaction,
    /// A holder's authorization of a transfer out of their custodial wallet (SR-3).
    CustodyAuthorization,
    /// An exchange's report of trades and transfers to a regulator (F6-8).
    ExchangeReport,
    /// A claim or credential attested by a claim issuer (SR-5).
    Credential,
    /// A consensus vote or proposal.
    Consensus,
    /// A wallet key's consent to being bound to a DID (SR-5).
    WalletBinding,
    /// A DID's key proving control of the DID in a binding (SR-5).
    DidControl,
    /// A holder's consent to a custodian keeping a wallet for them (SR-3).
    CustodyConsent,
    /// An organisation's request to another organisation's service, signed
    /// with its on-chain key (HTTP message signatures).
    ServiceRequest,
    /// A notice a service pushes to a person's webhook, signed with the
    /// organisation's on-chain key.
    Notice,
    /// A regulator's reconciliation of an exchange's report against the
    /// chain, exported for anyone to check (REC-9).
    Reconciliation,
}

impl Domain {
    /// Every domain.
    pub const ALL: [Domain; 11] = [
        Domain::Transaction,
        Domain::CustodyAuthorization,
        Domain::ExchangeReport,
        Domain::Credential,
        Domain::Consensus,
        Domain::WalletBinding,
        Domain::DidControl,
        Domain::CustodyConsent,
        Domain::ServiceRequest,
        Domain::Notice,
        Domain::Reconciliation,
    ];

    /// The label that prefixes every message of this domain.
    pub fn label(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"TRANCHE/v1/transaction\0",
            Domain::CustodyAuthorization => b"TRANCHE/v1/custody-authorization\0",
            Domain::ExchangeReport => b"TRANCHE/v1/exchange-report\0",
            Domain::Credential => b"TRANCHE/v1/credential\0",
            Domain::Consensus => b"TRANCHE/v1/consensus\0",
            Domain::WalletBinding => b"TRANCHE/v1/wallet-binding\0",
            Domain::DidControl => b"TRANCHE/v1/did-control\0",
            Domain::CustodyConsent => b"TRANCHE/v1/custody-consent\0",
            Domain::ServiceRequest => b"TRANCHE/v1/service-request\0",
            Domain::Notice => b"TRANCHE/v1/notice\0",
            Domain::Reconciliation => b"TRANCHE/v1/reconciliation\0",
        }
    }
}

/// The exact bytes signed for `body` in `domain` on `chain_id`.
pub fn signing_message(domain: Domain, chain_id: &ChainId, body: &[u8]) -> Vec<u8> {
    let chain = chain_id.encode();
    let label = domain.label();
    let mut msg = Vec::with_capacity(label.len() + chain.len() + body.len());
    msg.extend_from_slice(label);
    msg.extend_from_slice(&chain);
    msg.extend_from_slice(body);
    msg
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid ed25519 point.
    #[error("the public key is not a valid ed25519 key")]
    BadPublicKey,
    /// The signature does not verify.
    #[error("the signature does not verify for this key, message, domain and chain")]
    Invalid,
}

/// An ed25519 signing key. Its secret is wiped from memory when dropped
/// (each copy, when that copy is dropped).
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({})", self.public_key())
    }
}

impl Keypair {
    /// A fresh key from `rng` (the caller brings the randomness).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            signing: SigningKey::generate(rng),
        }
    }

    /// The key whose 32-byte secret seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte secret seed, wiped when the returned value is dropped.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// The wallet this key controls.
    pub fn address(&self) -> WalletAddress {
        self.public_key().address()
    }

    /// Signs `body` as a message of `domain` on `chain_id`.
    pub fn sign(&self, domain: Domain, chain_id: &ChainId, body: &[u8]) -> Signature {
        let msg = signing_message(domain, chain_id, body);
        Signature(self.signing.sign(&msg).to_bytes())
    }
}

impl Keypair {
    /// Signs the 64-byte hash data of a W3C Data Integrity proof
    /// (eddsa-jcs-2022), as that standard requires: raw ed25519, no prefix.
    /// It cannot stand in for a Tranche message: the input is two SHA-256
    /// outputs, which no one can steer to begin with a `TRANCHE/v1/` label.
    pub fn sign_data_integrity(&self, hash_data: &[u8; 64]) -> [u8; 64] {
        self.signing.sign(hash_data).to_bytes()
    }
}

/// Checks a W3C Data Integrity signature over its 64-byte hash data.
pub fn verify_data_integrity(
    public_key: &PublicKey,
    hash_data: &[u8; 64],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(&public_key.0).map_err(|_| SignatureError::BadPublicKey)?;
    key.verify_strict(hash_data, &ed25519_dalek::Signature::from_bytes(signature))
        .map_err(|_| SignatureError::Invalid)
}

/// Whether `public_key` is a usable ed25519 key: a point on the curve that
/// is not of small order (such a key could sign for anything weakly).
pub fn is_valid_public_key(public_key: &PublicKey) -> bool {
    VerifyingKey::from_bytes(&public_key.0).is_ok_and(|k| !k.is_weak())
}

/// Checks `signature` over `body` as a message of `domain` on `chain_id`.
/// Uses strict verification: no malleable or small-order encodings pass.
pub fn verify(
    public_key: &PublicKey,
    domain: Domain,
    chain_id: &ChainId,
    body: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(&public_key.0).map_err(|_| SignatureError::BadPublicKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    let msg = signing_message(domain, chain_id, body);
    key.verify_strict(&msg, &sig)
        .map_err(|_| SignatureError::Invalid)
}
