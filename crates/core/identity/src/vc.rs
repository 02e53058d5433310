//! Verifiable credentials and presentations (VC Data Model 2.0).

use crate::didkey::DidKey;
use crate::proof::{self, ProofOptions};
use crate::status::StatusList;
use crate::time::{format_datetime, parse_datetime};
use crate::VerifyError;
use serde_json::{json, Map, Value};
use tranche_crypto::Keypair;
use tranche_types::{CountryCode, Timestamp};

/// The VC Data Model 2.0 context. Its `@vocab` covers the terms used here.
pub const VC_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";

const ASSERTION: &str = "assertionMethod";
const AUTHENTICATION: &str = "authentication";
/// The largest number of credentials in one presentation.
pub const PRESENTATION_CREDENTIALS_MAX: usize = 32;

/// What a credential asserts about its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// Know-your-customer checks passed, at an assurance level
    /// (`low`, `substantial` or `high`).
    Kyc {
        /// The assurance level.
        assurance_level: String,
    },
    /// A professional or accredited investor.
    AccreditedInvestor,
    /// Country of residence.
    Jurisdiction {
        /// ISO 3166-1 alpha-2.
        country: CountryCode,
    },
    /// A legal person identified by its LEI.
    LegalPerson {
        /// The 20-character Legal Entity Identifier.
        lei: String,
    },
    /// The holder owns an asset, as an asset registry attests (ST-6); the
    /// registry records the credential's digest on chain
    /// ([`credential_digest`]).
    AssetOwnership {
        /// The asset's id on chain.
        asset: String,
    },
    /// A member of an organisation's staff in a role, as the organisation
    /// itself attests: how its people log in to its own service.
    Staff {
        /// The organisation's on-chain id.
        organisation: String,
        /// The staff role, e.g. `operator`.
        role: String,
    },
}

impl CredentialKind {
    fn type_name(&self) -> &'static str {
        match self {
            CredentialKind::Kyc { .. } => "KycCredential",
            CredentialKind::AccreditedInvestor => "AccreditedInvestorCredential",
            CredentialKind::Jurisdiction { .. } => "JurisdictionCredential",
            CredentialKind::LegalPerson { .. } => "LegalPersonCredential",
            CredentialKind::Staff { .. } => "StaffCredential",
            CredentialKind::AssetOwnership { .. } => "AssetOwnershipCredential",
        }
    }

    fn check(&self) -> Result<(), VerifyError> {
        match self {
            CredentialKind::Kyc { assurance_level }
                if !["low", "substantial", "high"].contains(&assurance_level.as_str()) =>
            {
                return Err(VerifyError::Malformed(
                    "the KYC assurance level must be low, substantial or high".into(),
                ));
            }
            CredentialKind::LegalPerson { lei } => {
                let ok = lei.len() == 20
                    && lei
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
                if !ok {
                    return Err(VerifyError::Malformed(
                        "an LEI is 20 uppercase letters and digits".into(),
                    ));
                }
            }
            CredentialKind::Staff { organisation, role } => {
                let name = |s: &str| {
                    !s.is_empty()
                        && s.len() <= 64
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                };
                if !name(organisation) || !name(role) {
                    return Err(VerifyError::Malformed(
                        "a staff credential's organisation and role are 1 to 64 letters, digits, '-' or '_'"
                            .into(),
                    ));
                }
            }
            CredentialKind::AssetOwnership { asset } if asset.is_empty() || asset.len() > 64 => {
                return Err(VerifyError::Malformed(
                    "an ownership credential names an asset id of 1 to 64 characters".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn claims(&self, subject: &mut Map<String, Value>) {
        match self {
            CredentialKind::Kyc { assurance_level } => {
                subject.insert("kycAssuranceLevel".into(), assurance_level.clone().into());
            }
            CredentialKind::AccreditedInvestor => {
                subject.insert("accreditedInvestor".into(), true.into());
            }
            CredentialKind::Jurisdiction { country } => {
                subject.insert("countryOfResidence".into(), country.to_string().into());
            }
            CredentialKind::LegalPerson { lei } => {
                subject.insert("lei".into(), lei.clone().into());
            }
            CredentialKind::Staff { organisation, role } => {
                subject.insert("organisation".into(), organisation.clone().into());
                subject.insert("staffRole".into(), role.clone().into());
            }
            CredentialKind::AssetOwnership { asset } => {
                subject.insert("asset".into(), asset.clone().into());
            }
        }
    }
}

/// The digest an asset registry records on chain for a credential it
/// issued: SHA-256 over the JCS canonical form (RFC 8785) of the whole
/// secured credential, so any change to it, proof included, changes it.
pub fn credential_digest(vc: &Value) -> Result<[u8; 32], VerifyError> {
    use sha2::Digest as _;
    let bytes = serde_json_canonicalizer::to_vec(vc)
        .map_err(|e| VerifyError::Malformed(format!("cannot canonicalize: {e}")))?;
    Ok(sha2::Sha256::digest(bytes).into())
}

/// Where a credential's revocation bit lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEntry {
    /// The status list credential's URL (its `id`).
    pub list: String,
    /// The entry's index.
    pub index: usize,
}

/// What to issue.
#[derive(Debug)]
pub struct CredentialRequest<'a> {
    /// The credential's id, e.g. `urn:uuid:...`, if it has one.
    pub id: Option<String>,
    /// The issuer's key; the issuer is its did:key.
    pub issuer: &'a Keypair,
    /// The subject's DID.
    pub subject: String,
    /// What is asserted.
    pub kind: CredentialKind,
    /// From when it is valid; also the proof's creation time.
    pub valid_from: Timestamp,
    /// Until when, if it expires.
    pub valid_until: Option<Timestamp>,
    /// Its revocation entry, if it can be revoked.
    pub status: Option<StatusEntry>,
}

/// Issues a credential secured with an eddsa-jcs-2022 proof.
pub fn issue_credential(req: &CredentialRequest<'_>) -> Result<Value, VerifyError> {
    req.kind.check()?;
    let issuer = DidKey::from_public_key(&req.issuer.public_key());
    let mut subject = Map::new();
    subject.insert("id".into(), req.subject.clone().into());
    req.kind.claims(&mut subject);
    let mut vc = json!({
        "@context": [VC_CONTEXT],
        "type": ["VerifiableCredential", req.kind.type_name()],
        "issuer": issuer.did(),
        "validFrom": format_datetime(req.valid_from),
        "credentialSubject": subject,
    });
    if let Some(id) = &req.id {
        vc["id"] = id.clone().into();
    }
    if let Some(until) = req.valid_until {
        vc["validUntil"] = format_datetime(until).into();
    }
    if let Some(s) = &req.status {
        vc["credentialStatus"] = json!({
            "id": format!("{}#{}", s.list, s.index),
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": s.index.to_string(),
            "statusListCredential": s.list,
        });
    }
    proof::sign(
        &mut vc,
        req.issuer,
        &ProofOptions {
            purpose: ASSERTION.into(),
            created: req.valid_from,
            challenge: None,
            domain: None,
        },
    )?;
    Ok(vc)
}

/// Issues a Bitstring Status List credential with id `list_url`.
pub fn status_list_credential(
    issuer: &Keypair,
    list_url: &str,
    list: &StatusList,
    now: Timestamp,
) -> Result<Value, VerifyError> {
    let did = DidKey::from_public_key(&issuer.public_key());
    let mut vc = json!({
        "@context": [VC_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": did.did(),
        "validFrom": format_datetime(now),
        "credentialSubject": {
            "id": format!("{list_url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": list.encode(),
        },
    });
    proof::sign(
        &mut vc,
        issuer,
        &ProofOptions {
            purpose: ASSERTION.into(),
            created: now,
            challenge: None,
            domain: None,
        },
    )?;
    Ok(vc)
}

/// How a verifier verifies.
pub struct VerifyOptions<'a> {
    /// The verifier's time.
    pub now: Timestamp,
    /// Trusted issuers (DIDs); `None` trusts any issuer whose proof verifies.
    pub trusted_issuers: Option<&'a [String]>,
    /// Fetches a status list credential by URL.
    pub status_lists: &'a dyn Fn(&str) -> Option<Value>,
}

impl std::fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("now", &self.now)
            .field("trusted_issuers", &self.trusted_issuers)
            .finish()
    }
}

/// A credential that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCredential {
    /// The issuer named by the credential.
    pub issuer: String,
    /// The DID whose key signed it.
    pub signer: String,
    /// The subject's id, if any.
    pub subject: Option<String>,
    /// Its types.
    pub types: Vec<String>,
    /// Whether its issuer is a DID bound to the signing key (else only the
    /// signing key is known; see `--trusted-issuer`).
    pub issuer_bound: bool,
    /// What it asserts about its subject: `credentialSubject` without `id`.
    pub claims: Map<String, Value>,
    /// Its `id`, if it has one.
    pub id: Option<String>,
}

fn string_field<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, VerifyError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::Malformed(format!("{field} must be a string"))),
    }
}

/// The DID of the key the proof says signed, read without verifying.
fn claimed_signer(obj: &Map<String, Value>) -> Result<String, VerifyError> {
    let vm = obj
        .get("proof")
        .and_then(Value::as_object)
        .and_then(|p| p.get("verificationMethod"))
        .and_then(Value::as_str);
    match vm {
        None => Err(VerifyError::MissingProof),
        Some(vm) => Ok(DidKey::parse(vm)
            .map_err(VerifyError::VerificationMethod)?
            .did()),
    }
}

fn types(obj: &Map<String, Value>) -> Vec<String> {
    match obj.get("type") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Verifies a credential: its proof, its issuer, its validity period, its
/// status, and the verifier's trust in its issuer.
pub fn verify_credential(
    vc: &Value,
    opts: &VerifyOptions<'_>,
) -> Result<VerifiedCredential, VerifyError> {
    let obj = vc
        .as_object()
        .ok_or_else(|| VerifyError::Malformed("a credential is a JSON object".into()))?;
    let types = types(obj);
    if !types.iter().any(|t| t == "VerifiableCredential") {
        return Err(VerifyError::Malformed(
            "type must include VerifiableCredential".into(),
        ));
    }
    // Who signed, and whom the credential names, are checked before the
    // signature, so a swapped issuer is named as such.
    let signer = claimed_signer(obj)?;
    let issuer = match obj.get("issuer") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => string_field(o, "id")?
            .ok_or_else(|| VerifyError::Malformed("issuer.id is missing".into()))?
            .to_string(),
        _ => {
            return Err(VerifyError::Malformed(
                "the credential has no issuer".into(),
            ))
        }
    };
    let issuer_bound = issuer.starts_with("did:");
    if issuer_bound && issuer != signer {
        return Err(VerifyError::IssuerMismatch { issuer, signer });
    }
    proof::verify(vc, ASSERTION)?;
    if let Some(from) = string_field(obj, "validFrom")? {
        let t = parse_datetime(from)
            .map_err(|e| VerifyError::Malformed(format!("validFrom: {}", e.0)))?;
        if opts.now < t {
            return Err(VerifyError::NotYetValid(from.to_string()));
        }
    }
    if let Some(until) = string_field(obj, "validUntil")? {
        let t = parse_datetime(until)
            .map_err(|e| VerifyError::Malformed(format!("validUntil: {}", e.0)))?;
        if opts.now > t {
            return Err(VerifyError::Expired(until.to_string()));
        }
    }
    if let Some(status) = obj.get("credentialStatus") {
        check_status(status, &signer, opts)?;
    }
    if let Some(trusted) = opts.trusted_issuers {
        if !trusted.contains(&signer) {
            return Err(VerifyError::UntrustedIssuer(signer));
        }
    }
    let (subject, claims) = match obj.get("credentialSubject") {
        Some(Value::Object(s)) => {
            let mut claims = s.clone();
            claims.remove("id");
            (string_field(s, "id")?.map(str::to_string), claims)
        }
        _ => {
            return Err(VerifyError::Malformed(
                "credentialSubject must be an object".into(),
            ))
        }
    };
    Ok(VerifiedCredential {
        issuer,
        signer,
        subject,
        types,
        issuer_bound,
        claims,
        id: string_field(obj, "id")?.map(str::to_string),
    })
}

fn check_status(status: &Value, signer: &str, opts: &VerifyOptions<'_>) -> Result<(), VerifyError> {
    let entry = status
        .as_object()
        .ok_or_else(|| VerifyError::Malformed("credentialStatus must be an object".into()))?;
    if string_field(entry, "type")? != Some("BitstringStatusListEntry") {
        return Err(VerifyError::StatusUnavailable(
            "only BitstringStatusListEntry is supported".into(),
        ));
    }
    let purpose = string_field(entry, "statusPurpose")?.unwrap_or("");
    let list_url = string_field(entry, "statusListCredential")?.ok_or_else(|| {
        VerifyError::Malformed("credentialStatus.statusListCredential is missing".into())
    })?;
    let index: usize = string_field(entry, "statusListIndex")?
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| {
            VerifyError::Malformed(
                "credentialStatus.statusListIndex must be a number in a string".into(),
            )
        })?;
    let list_vc = (opts.status_lists)(list_url).ok_or_else(|| {
        VerifyError::StatusUnavailable(format!("status list {list_url} could not be fetched"))
    })?;
    let lobj = list_vc.as_object().ok_or_else(|| {
        VerifyError::StatusUnavailable("the status list is not a JSON object".into())
    })?;
    let verified = proof::verify(&list_vc, ASSERTION).map_err(|e| {
        VerifyError::StatusUnavailable(format!("the status list's proof fails: {e}"))
    })?;
    if verified.signer.did() != signer {
        return Err(VerifyError::StatusUnavailable(
            "the status list is not signed by the credential's issuer".into(),
        ));
    }
    if string_field(lobj, "id")? != Some(list_url) {
        return Err(VerifyError::StatusUnavailable(
            "the status list's id is not the URL asked for".into(),
        ));
    }
    let subject = lobj
        .get("credentialSubject")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            VerifyError::StatusUnavailable("the status list has no credentialSubject".into())
        })?;
    if string_field(subject, "statusPurpose")? != Some(purpose) {
        return Err(VerifyError::StatusUnavailable(
            "the status list has another purpose".into(),
        ));
    }
    let encoded = string_field(subject, "encodedList")?.ok_or_else(|| {
        VerifyError::StatusUnavailable("the status list has no encodedList".into())
    })?;
    let list =
        StatusList::decode(encoded).map_err(|e| VerifyError::StatusUnavailable(e.to_string()))?;
    match list.get(index) {
        None => Err(VerifyError::StatusUnavailable(format!(
            "index {index} is past the list's end"
        ))),
        Some(true) => Err(VerifyError::Revoked {
            list: list_url.to_string(),
            index,
        }),
        Some(false) => Ok(()),
    }
}

/// Wraps credentials in a presentation signed by the holder for a verifier's
/// challenge and domain.
pub fn present(
    holder: &Keypair,
    credentials: Vec<Value>,
    challenge: &str,
    domain: &str,
    now: Timestamp,
) -> Result<Value, VerifyError> {
    if credentials.len() > PRESENTATION_CREDENTIALS_MAX {
        return Err(VerifyError::Malformed(format!(
            "at most {PRESENTATION_CREDENTIALS_MAX} credentials per presentation"
        )));
    }
    let did = DidKey::from_public_key(&holder.public_key());
    let mut vp = json!({
        "@context": [VC_CONTEXT],
        "type": ["VerifiablePresentation"],
        "holder": did.did(),
        "verifiableCredential": credentials,
    });
    proof::sign(
        &mut vp,
        holder,
        &ProofOptions {
            purpose: AUTHENTICATION.into(),
            created: now,
            challenge: Some(challenge.into()),
            domain: Some(domain.into()),
        },
    )?;
    Ok(vp)
}

/// A presentation that verified: who presented, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPresentation {
    /// The holder's DID.
    pub holder: String,
    /// Its credentials, verified.
    pub credentials: Vec<VerifiedCredential>,
}

/// Verifies a presentation: the holder's proof for this challenge and domain,
/// and every credential in it, each about the holder.
pub fn verify_presentation(
    vp: &Value,
    challenge: &str,
    domain: &str,
    opts: &VerifyOptions<'_>,
) -> Result<VerifiedPresentation, VerifyError> {
    let obj = vp
        .as_object()
        .ok_or_else(|| VerifyError::Malformed("a presentation is a JSON object".into()))?;
    if !types(obj).iter().any(|t| t == "VerifiablePresentation") {
        return Err(VerifyError::Malformed(
            "type must include VerifiablePresentation".into(),
        ));
    }
    let signer = claimed_signer(obj)?;
    let holder = string_field(obj, "holder")?
        .ok_or_else(|| VerifyError::Malformed("the presentation has no holder".into()))?;
    if holder != signer {
        return Err(VerifyError::HolderMismatch {
            holder: holder.to_string(),
            signer,
        });
    }
    let verified = proof::verify(vp, AUTHENTICATION)?;
    if verified.challenge.as_deref() != Some(challenge) {
        return Err(VerifyError::ChallengeMismatch);
    }
    if verified.domain.as_deref() != Some(domain) {
        return Err(VerifyError::DomainMismatch);
    }
    let vcs: Vec<&Value> = match obj.get("verifiableCredential") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => {
            return Err(VerifyError::Malformed(
                "verifiableCredential must be a list".into(),
            ))
        }
    };
    if vcs.len() > PRESENTATION_CREDENTIALS_MAX {
        return Err(VerifyError::Malformed("too many credentials".into()));
    }
    let mut credentials = Vec::new();
    for (index, vc) in vcs.into_iter().enumerate() {
        let c = verify_credential(vc, opts).map_err(|e| VerifyError::Credential {
            index,
            error: Box::new(e),
        })?;
        if c.subject.as_deref() != Some(holder) {
            return Err(VerifyError::SubjectNotHolder {
                index,
                subject: c.subject.unwrap_or_else(|| "nobody".into()),
            });
        }
        credentials.push(c);
    }
    Ok(VerifiedPresentation {
        holder: holder.to_string(),
        credentials,
    })
}
