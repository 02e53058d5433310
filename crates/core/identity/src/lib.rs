//! Proves who people and organisations are without keeping their personal
//! data: did:key identifiers, W3C verifiable credentials and presentations
//! secured with Data Integrity eddsa-jcs-2022 proofs, and Bitstring Status
//! List revocation (SR-5).
//!
//! Pure: no IO, no clock, no randomness. The verifier passes the current time
//! and a way to fetch status lists; a credential's id, if any, is given.

mod didkey;
mod proof;
mod status;
mod time;
mod vc;

pub use didkey::{DidKey, DidKeyError};
pub use proof::{
    sign as sign_proof, verify as verify_proof, ProofOptions, VerifiedProof, CRYPTOSUITE,
};
pub use status::{StatusList, StatusListError, LIST_BITS_MIN};
pub use time::{format_datetime, parse_datetime};
pub use vc::{
    credential_digest, issue_credential, present, status_list_credential, verify_credential,
    verify_presentation, CredentialKind, CredentialRequest, StatusEntry, VerifiedCredential,
    VerifiedPresentation, VerifyOptions, VC_CONTEXT,
};

/// Why a credential or presentation does not verify. Each check has its own
/// variant, so every kind of tampering gets a distinct answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not the shape of a credential or presentation.
    #[error("malformed: {0}")]
    Malformed(String),
    /// There is no proof.
    #[error("the document has no proof")]
    MissingProof,
    /// The proof is not a DataIntegrityProof.
    #[error("unsupported proof type {0:?}; only DataIntegrityProof is accepted")]
    UnsupportedProofType(String),
    /// The cryptosuite is not eddsa-jcs-2022.
    #[error("unsupported cryptosuite {0:?}; only eddsa-jcs-2022 is accepted")]
    UnsupportedCryptosuite(String),
    /// The verification method is not a usable did:key.
    #[error("the proof's verification method is not an Ed25519 did:key: {0}")]
    VerificationMethod(DidKeyError),
    /// The proof value is not a base58btc Ed25519 signature.
    #[error("the proof value is not a base58btc-encoded 64-byte signature")]
    BadProofValue,
    /// The proof's context does not match the document's.
    #[error("the proof's @context does not match the document's")]
    ContextMismatch,
    /// The signature does not match the document and proof options.
    #[error("the signature does not verify: the document or its proof options were changed after signing")]
    SignatureInvalid,
    /// The proof was made for another purpose.
    #[error("the proof is for {found:?}, but {expected:?} is required")]
    ProofPurposeMismatch {
        /// Required.
        expected: String,
        /// Found.
        found: String,
    },
    /// The signing key is not the credential's issuer.
    #[error("the credential names issuer {issuer} but was signed by {signer}")]
    IssuerMismatch {
        /// The issuer named.
        issuer: String,
        /// The signer.
        signer: String,
    },
    /// Before `validFrom`.
    #[error("the credential is not valid before {0}")]
    NotYetValid(String),
    /// After `validUntil`.
    #[error("the credential expired at {0}")]
    Expired(String),
    /// Its status bit says revoked.
    #[error("the credential is revoked (status list {list}, index {index})")]
    Revoked {
        /// The status list.
        list: String,
        /// The entry.
        index: usize,
    },
    /// The status list could not be had or trusted.
    #[error("the credential's status cannot be checked: {0}")]
    StatusUnavailable(String),
    /// The issuer is not on the verifier's trusted list.
    #[error("the issuer {0} is not trusted by this verifier")]
    UntrustedIssuer(String),
    /// The presentation answers another challenge.
    #[error("the presentation answers another challenge (a replay?)")]
    ChallengeMismatch,
    /// The presentation is for another verifier.
    #[error("the presentation is for another domain")]
    DomainMismatch,
    /// The presentation's signer is not its holder.
    #[error("the presentation was signed by {signer}, not its holder {holder}")]
    HolderMismatch {
        /// The holder named.
        holder: String,
        /// The signer.
        signer: String,
    },
    /// A credential is about someone other than the holder.
    #[error("credential #{index} is about {subject}, not the holder")]
    SubjectNotHolder {
        /// Which credential.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// A credential inside a presentation failed.
    #[error("credential #{index}: {error}")]
    Credential {
        /// Which credential.
        index: usize,
        /// Why.
        error: Box<VerifyError>,
    },
}
