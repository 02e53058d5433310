//! Data Integrity proofs with the eddsa-jcs-2022 cryptosuite (W3C): JCS
//! canonicalization (RFC 8785), SHA-256, Ed25519, base58btc proof values.

use crate::didkey::DidKey;
use crate::time::{parse_datetime, DateTimeError};
use crate::VerifyError;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tranche_crypto::{verify_data_integrity, Keypair};
use tranche_types::Timestamp;

/// The only cryptosuite accepted.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";

/// What a proof is for, and what it must then carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofOptions {
    /// `assertionMethod` for credentials, `authentication` for presentations.
    pub purpose: String,
    /// When the proof was made.
    pub created: Timestamp,
    /// The verifier's challenge (presentations).
    pub challenge: Option<String>,
    /// The verifier's domain (presentations).
    pub domain: Option<String>,
}

fn jcs(value: &Value) -> Result<Vec<u8>, VerifyError> {
    serde_json_canonicalizer::to_vec(value)
        .map_err(|e| VerifyError::Malformed(format!("cannot canonicalize: {e}")))
}

fn hash_data(proof_config: &Value, document: &Value) -> Result<[u8; 64], VerifyError> {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&Sha256::digest(jcs(proof_config)?));
    out[32..].copy_from_slice(&Sha256::digest(jcs(document)?));
    Ok(out)
}

/// Adds an eddsa-jcs-2022 proof by `key` to `document` (an object without a proof).
pub fn sign(
    document: &mut Value,
    key: &Keypair,
    options: &ProofOptions,
) -> Result<(), VerifyError> {
    let obj = document
        .as_object_mut()
        .ok_or_else(|| VerifyError::Malformed("a document must be a JSON object".into()))?;
    if obj.contains_key("proof") {
        return Err(VerifyError::Malformed(
            "the document already has a proof".into(),
        ));
    }
    let did = DidKey::from_public_key(&key.public_key());
    let mut config = Map::new();
    config.insert("type".into(), "DataIntegrityProof".into());
    config.insert("cryptosuite".into(), CRYPTOSUITE.into());
    config.insert(
        "created".into(),
        crate::time::format_datetime(options.created).into(),
    );
    config.insert(
        "verificationMethod".into(),
        did.verification_method().into(),
    );
    config.insert("proofPurpose".into(), options.purpose.clone().into());
    if let Some(c) = &options.challenge {
        config.insert("challenge".into(), c.clone().into());
    }
    if let Some(d) = &options.domain {
        config.insert("domain".into(), d.clone().into());
    }
    if let Some(ctx) = obj.get("@context") {
        config.insert("@context".into(), ctx.clone());
    }
    let config = Value::Object(config);
    let data = hash_data(&config, document)?;
    let signature = key.sign_data_integrity(&data);
    let mut proof = config;
    proof["proofValue"] = format!("z{}", bs58::encode(signature).into_string()).into();
    document["proof"] = proof;
    Ok(())
}

/// A verified proof: who made it, for what, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The signer's did:key.
    pub signer: DidKey,
    /// The proof's purpose.
    pub purpose: String,
    /// The challenge it carries.
    pub challenge: Option<String>,
    /// The domain it carries.
    pub domain: Option<String>,
    /// When it was made.
    pub created: Option<Timestamp>,
}

fn text<'a>(proof: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, VerifyError> {
    match proof.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::Malformed(format!(
            "proof.{field} must be a string"
        ))),
    }
}

/// Verifies the single eddsa-jcs-2022 proof of `secured`, made for `purpose`
/// (checked before the signature, so a changed purpose is named as such).
pub fn verify(secured: &Value, purpose: &str) -> Result<VerifiedProof, VerifyError> {
    let obj = secured
        .as_object()
        .ok_or_else(|| VerifyError::Malformed("a document must be a JSON object".into()))?;
    let proof = match obj.get("proof") {
        None => return Err(VerifyError::MissingProof),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(VerifyError::Malformed(
                "only a single proof object is supported".into(),
            ))
        }
    };
    if text(proof, "type")? != Some("DataIntegrityProof") {
        return Err(VerifyError::UnsupportedProofType(
            text(proof, "type")?.unwrap_or("none").to_string(),
        ));
    }
    let suite = text(proof, "cryptosuite")?.unwrap_or("none");
    if suite != CRYPTOSUITE {
        return Err(VerifyError::UnsupportedCryptosuite(suite.to_string()));
    }
    let vm = text(proof, "verificationMethod")?
        .ok_or_else(|| VerifyError::Malformed("the proof has no verificationMethod".into()))?;
    let signer = DidKey::parse(vm).map_err(VerifyError::VerificationMethod)?;
    if vm.contains('#') && vm != signer.verification_method() {
        return Err(VerifyError::VerificationMethod(
            crate::DidKeyError::NotDidKey(vm.to_string()),
        ));
    }
    let found = text(proof, "proofPurpose")?
        .ok_or_else(|| VerifyError::Malformed("the proof has no proofPurpose".into()))?;
    if found != purpose {
        return Err(VerifyError::ProofPurposeMismatch {
            expected: purpose.to_string(),
            found: found.to_string(),
        });
    }
    let purpose = found.to_string();
    let value = text(proof, "proofValue")?.ok_or(VerifyError::BadProofValue)?;
    let sig = value
        .strip_prefix('z')
        .and_then(|b| bs58::decode(b).into_vec().ok())
        .and_then(|v| <[u8; 64]>::try_from(v).ok())
        .ok_or(VerifyError::BadProofValue)?;
    let mut unsecured = obj.clone();
    unsecured.remove("proof");
    let mut config = proof.clone();
    config.remove("proofValue");
    if let Some(pctx) = config.get("@context") {
        // The document's context must begin with the proof's.
        let (Some(p), Some(d)) = (
            pctx.as_array(),
            unsecured.get("@context").and_then(Value::as_array),
        ) else {
            return Err(VerifyError::ContextMismatch);
        };
        if d.len() < p.len() || d[..p.len()] != p[..] {
            return Err(VerifyError::ContextMismatch);
        }
    }
    let created =
        match text(proof, "created")? {
            Some(c) => Some(parse_datetime(c).map_err(|DateTimeError(e)| {
                VerifyError::Malformed(format!("proof.created: {e}"))
            })?),
            None => None,
        };
    let data = hash_data(&Value::Object(config), &Value::Object(unsecured))?;
    verify_data_integrity(&signer.public_key(), &data, &sig)
        .map_err(|_| VerifyError::SignatureInvalid)?;
    Ok(VerifiedProof {
        signer,
        purpose,
        challenge: text(proof, "challenge")?.map(str::to_string),
        domain: text(proof, "domain")?.map(str::to_string),
        created,
    })
}
