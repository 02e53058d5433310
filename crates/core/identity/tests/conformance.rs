//! W3C test vectors (see tests/data/SOURCES.md) and every way a credential or
//! presentation can fail, each with its own error.

use serde_json::Value;
use tranche_crypto::Keypair;
use tranche_identity::*;
use tranche_types::{CountryCode, Timestamp};

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn at(text: &str) -> Timestamp {
    parse_datetime(text).unwrap()
}

fn no_lists(_: &str) -> Option<Value> {
    None
}

fn opts(now: &str) -> VerifyOptions<'static> {
    VerifyOptions {
        now: at(now),
        trusted_issuers: None,
        status_lists: &no_lists,
    }
}

/// The Ed25519 key of keyPair.json, from its multibase private key
/// (multicodec 0x8026 + the 32-byte seed).
fn vector_key() -> Keypair {
    let kp = data("keyPair.json");
    let private = kp["privateKeyMultibase"].as_str().unwrap();
    let bytes = bs58::decode(&private[1..]).into_vec().unwrap();
    assert_eq!(&bytes[..2], &[0x80, 0x26]);
    Keypair::from_seed(&bytes[2..].try_into().unwrap())
}

#[test]
fn the_w3c_eddsa_jcs_2022_credential_verifies() {
    let vc = data("signedJCS.json");
    let v = verify_credential(&vc, &opts("2024-01-01T00:00:00Z")).unwrap();
    assert_eq!(v.issuer, "https://vc.example/issuers/5678");
    assert_eq!(
        v.signer,
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    );
    assert!(!v.issuer_bound, "an https issuer is not bound to the key");
    assert_eq!(v.subject.as_deref(), Some("did:example:abcdefgh"));
}

#[test]
fn signing_the_w3c_unsigned_credential_gives_the_vectors_proof_value() {
    let key = vector_key();
    let public = data("keyPair.json")["publicKeyMultibase"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        DidKey::from_public_key(&key.public_key()).did(),
        format!("did:key:{public}")
    );
    let mut vc = data("unsigned.json");
    sign_proof(
        &mut vc,
        &key,
        &ProofOptions {
            purpose: "assertionMethod".into(),
            created: at("2023-02-24T23:36:38Z"),
            challenge: None,
            domain: None,
        },
    )
    .unwrap();
    let expected = data("signedJCS.json");
    assert_eq!(vc["proof"]["proofValue"], expected["proof"]["proofValue"]);
    assert_eq!(vc, expected);
}

#[test]
fn did_key_vectors_derive_from_their_seeds() {
    let vectors = data("did-key-ed25519.json");
    let mut checked = 0;
    for (did, v) in vectors.as_object().unwrap() {
        let seed: [u8; 32] = hex::decode(v["seed"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let key = Keypair::from_seed(&seed);
        let ours = DidKey::from_public_key(&key.public_key());
        assert_eq!(&ours.did(), did);
        let parsed = DidKey::parse(did).unwrap();
        assert_eq!(parsed.public_key(), key.public_key());
        // One vector gives its key as a JWK instead of base58.
        if let Some(b58) = v["verificationKeyPair"]["publicKeyBase58"].as_str() {
            assert_eq!(bs58::encode(key.public_key().0).into_string(), b58);
        }
        let doc = ours.document();
        assert_eq!(doc["id"], did.as_str());
        assert_eq!(doc["verificationMethod"][0]["type"], "Multikey");
        checked += 1;
    }
    assert!(checked >= 3);
}

#[test]
fn did_key_errors_are_distinct() {
    assert!(matches!(
        DidKey::parse("did:web:example.com"),
        Err(DidKeyError::NotDidKey(_))
    ));
    assert_eq!(
        DidKey::parse("did:key:m6Mk"),
        Err(DidKeyError::BadMultibase)
    );
    assert_eq!(
        DidKey::parse("did:key:z0OIl"),
        Err(DidKeyError::BadMultibase)
    );
    // A secp256k1 key (multicodec 0xe7 0x01).
    let mut k1 = vec![0xe7, 0x01];
    k1.extend_from_slice(&[2; 33]);
    let did = format!("did:key:z{}", bs58::encode(k1).into_string());
    assert_eq!(DidKey::parse(&did), Err(DidKeyError::WrongCodec));
    let mut short = vec![0xed, 0x01];
    short.extend_from_slice(&[2; 31]);
    let did = format!("did:key:z{}", bs58::encode(short).into_string());
    assert_eq!(DidKey::parse(&did), Err(DidKeyError::WrongKeyLength(31)));
}

// --- Our own credentials and presentations ---------------------------------

fn issuer() -> Keypair {
    Keypair::from_seed(&[1; 32])
}
fn holder() -> Keypair {
    Keypair::from_seed(&[2; 32])
}
fn holder_did() -> String {
    DidKey::from_public_key(&holder().public_key()).did()
}
fn issuer_did() -> String {
    DidKey::from_public_key(&issuer().public_key()).did()
}
const LIST: &str = "https://kyc.example/status/1";

fn kyc(status: Option<usize>) -> Value {
    issue_credential(&CredentialRequest {
        id: Some("urn:uuid:0b1f7c2e-0000-4000-8000-000000000001".into()),
        issuer: &issuer(),
        subject: holder_did(),
        kind: CredentialKind::Kyc {
            assurance_level: "high".into(),
        },
        valid_from: at("2026-01-01T00:00:00Z"),
        valid_until: Some(at("2027-01-01T00:00:00Z")),
        status: status.map(|index| StatusEntry {
            list: LIST.into(),
            index,
        }),
    })
    .unwrap()
}

fn vp(vcs: Vec<Value>) -> Value {
    present(
        &holder(),
        vcs,
        "nonce-123",
        "exchange.example",
        at("2026-06-01T00:00:00Z"),
    )
    .unwrap()
}

fn check_vp(vp: &Value) -> Result<VerifiedPresentation, VerifyError> {
    verify_presentation(
        vp,
        "nonce-123",
        "exchange.example",
        &opts("2026-06-01T00:00:00Z"),
    )
}

#[test]
fn every_kind_of_credential_issues_and_verifies() {
    for kind in [
        CredentialKind::Kyc {
            assurance_level: "substantial".into(),
        },
        CredentialKind::AccreditedInvestor,
        CredentialKind::Jurisdiction {
            country: CountryCode::new("KR").unwrap(),
        },
        CredentialKind::LegalPerson {
            lei: "5493001KJTIIGC8Y1R12".into(),
        },
    ] {
        let vc = issue_credential(&CredentialRequest {
            id: None,
            issuer: &issuer(),
            subject: holder_did(),
            kind,
            valid_from: at("2026-01-01T00:00:00Z"),
            valid_until: None,
            status: None,
        })
        .unwrap();
        let v = verify_credential(&vc, &opts("2026-06-01T00:00:00Z")).unwrap();
        assert!(v.issuer_bound);
        assert_eq!(v.issuer, issuer_did());
    }
    let bad = CredentialRequest {
        id: None,
        issuer: &issuer(),
        subject: holder_did(),
        kind: CredentialKind::LegalPerson {
            lei: "short".into(),
        },
        valid_from: at("2026-01-01T00:00:00Z"),
        valid_until: None,
        status: None,
    };
    assert!(issue_credential(&bad).is_err());
}

#[test]
fn a_presentation_verifies_for_its_challenge_and_domain() {
    let v = check_vp(&vp(vec![kyc(None)])).unwrap();
    assert_eq!(v.holder, holder_did());
    assert_eq!(v.credentials.len(), 1);
}

#[test]
fn tampered_subject_fails_the_credentials_signature() {
    let mut p = vp(vec![kyc(None)]);
    p["verifiableCredential"][0]["credentialSubject"]["kycAssuranceLevel"] = "low".into();
    // The presentation's own signature covers the credential too.
    assert_eq!(check_vp(&p), Err(VerifyError::SignatureInvalid));
    let mut vc = kyc(None);
    vc["credentialSubject"]["kycAssuranceLevel"] = "low".into();
    let p = vp(vec![vc]);
    assert_eq!(
        check_vp(&p),
        Err(VerifyError::Credential {
            index: 0,
            error: Box::new(VerifyError::SignatureInvalid)
        })
    );
}

#[test]
fn tampered_proof_options_are_caught() {
    let mut vc = kyc(None);
    vc["proof"]["created"] = "2026-01-02T00:00:00Z".into();
    assert_eq!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::SignatureInvalid)
    );
    let mut vc = kyc(None);
    vc["proof"]["proofPurpose"] = "authentication".into();
    assert!(matches!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::ProofPurposeMismatch { .. })
    ));
    let mut vc = kyc(None);
    let other = DidKey::from_public_key(&holder().public_key());
    vc["proof"]["verificationMethod"] = other.verification_method().into();
    assert!(matches!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::IssuerMismatch { .. })
    ));
    let mut vc = kyc(None);
    vc["issuer"] = other.did().into();
    assert!(matches!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::IssuerMismatch { .. })
    ));
    let mut vc = kyc(None);
    vc["proof"]["@context"] = serde_json::json!(["https://example.org/other"]);
    assert_eq!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::ContextMismatch)
    );
    let mut vc = kyc(None);
    vc["proof"]["proofValue"] = "not-base58".into();
    assert_eq!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::BadProofValue)
    );
}

#[test]
fn a_wrong_challenge_or_domain_is_refused() {
    let p = vp(vec![kyc(None)]);
    let o = opts("2026-06-01T00:00:00Z");
    assert_eq!(
        verify_presentation(&p, "other-nonce", "exchange.example", &o),
        Err(VerifyError::ChallengeMismatch)
    );
    assert_eq!(
        verify_presentation(&p, "nonce-123", "evil.example", &o),
        Err(VerifyError::DomainMismatch)
    );
}

#[test]
fn validity_dates_are_honoured() {
    let vc = kyc(None);
    assert!(matches!(
        verify_credential(&vc, &opts("2025-12-31T23:59:59Z")),
        Err(VerifyError::NotYetValid(_))
    ));
    assert!(matches!(
        verify_credential(&vc, &opts("2027-01-01T00:00:01Z")),
        Err(VerifyError::Expired(_))
    ));
    let p = vp(vec![vc]);
    let late = verify_presentation(
        &p,
        "nonce-123",
        "exchange.example",
        &opts("2027-02-01T00:00:00Z"),
    );
    assert!(
        matches!(late, Err(VerifyError::Credential { index: 0, error }) if matches!(*error, VerifyError::Expired(_)))
    );
}

#[test]
fn revoked_credentials_are_refused_and_the_list_must_be_the_issuers() {
    let mut list = StatusList::new();
    let revoked_list = {
        let mut l = StatusList::new();
        l.set(7, true);
        l
    };
    list.set(8, true);
    let good = status_list_credential(&issuer(), LIST, &list, at("2026-01-01T00:00:00Z")).unwrap();
    let with_7 =
        status_list_credential(&issuer(), LIST, &revoked_list, at("2026-01-01T00:00:00Z")).unwrap();
    let forged =
        status_list_credential(&holder(), LIST, &list, at("2026-01-01T00:00:00Z")).unwrap();
    let vc = kyc(Some(7));
    let fetch_good = |_: &str| Some(good.clone());
    let fetch_7 = |_: &str| Some(with_7.clone());
    let fetch_forged = |_: &str| Some(forged.clone());
    let with = |f: &dyn Fn(&str) -> Option<Value>| {
        verify_credential(
            &vc,
            &VerifyOptions {
                now: at("2026-06-01T00:00:00Z"),
                trusted_issuers: None,
                status_lists: f,
            },
        )
    };
    assert!(with(&fetch_good).is_ok());
    assert_eq!(
        with(&fetch_7),
        Err(VerifyError::Revoked {
            list: LIST.into(),
            index: 7
        })
    );
    assert!(matches!(
        with(&fetch_forged),
        Err(VerifyError::StatusUnavailable(_))
    ));
    assert!(matches!(
        with(&no_lists),
        Err(VerifyError::StatusUnavailable(_))
    ));
}

#[test]
fn only_trusted_issuers_pass_when_a_list_is_given() {
    let vc = kyc(None);
    let trusted = vec![issuer_did()];
    let others = vec![holder_did()];
    let o = |t: &'static [String]| VerifyOptions {
        now: at("2026-06-01T00:00:00Z"),
        trusted_issuers: Some(t),
        status_lists: &no_lists,
    };
    let trusted: &'static [String] = Box::leak(trusted.into_boxed_slice());
    let others: &'static [String] = Box::leak(others.into_boxed_slice());
    assert!(verify_credential(&vc, &o(trusted)).is_ok());
    assert_eq!(
        verify_credential(&vc, &o(others)),
        Err(VerifyError::UntrustedIssuer(issuer_did()))
    );
}

#[test]
fn unsupported_cryptosuites_and_missing_proofs_are_refused() {
    let mut vc = kyc(None);
    vc["proof"]["cryptosuite"] = "ecdsa-rdfc-2019".into();
    assert_eq!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::UnsupportedCryptosuite(
            "ecdsa-rdfc-2019".into()
        ))
    );
    let mut vc = kyc(None);
    vc["proof"]["type"] = "Ed25519Signature2020".into();
    assert!(matches!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::UnsupportedProofType(_))
    ));
    let mut vc = kyc(None);
    vc.as_object_mut().unwrap().remove("proof");
    assert_eq!(
        verify_credential(&vc, &opts("2026-06-01T00:00:00Z")),
        Err(VerifyError::MissingProof)
    );
}

#[test]
fn the_holder_must_sign_and_be_the_subject() {
    // Someone else's credential presented by the holder.
    let someone = issue_credential(&CredentialRequest {
        id: None,
        issuer: &issuer(),
        subject: "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp".into(),
        kind: CredentialKind::AccreditedInvestor,
        valid_from: at("2026-01-01T00:00:00Z"),
        valid_until: None,
        status: None,
    })
    .unwrap();
    assert!(matches!(
        check_vp(&vp(vec![someone])),
        Err(VerifyError::SubjectNotHolder { index: 0, .. })
    ));
    // A presentation naming another holder than its signer.
    let mut p = present(
        &issuer(),
        vec![],
        "nonce-123",
        "exchange.example",
        at("2026-06-01T00:00:00Z"),
    )
    .unwrap();
    let proof = p.as_object_mut().unwrap().remove("proof").unwrap();
    p["holder"] = holder_did().into();
    // Re-sign so only the holder binding is wrong.
    let _ = proof;
    sign_proof(
        &mut p,
        &issuer(),
        &ProofOptions {
            purpose: "authentication".into(),
            created: at("2026-06-01T00:00:00Z"),
            challenge: Some("nonce-123".into()),
            domain: Some("exchange.example".into()),
        },
    )
    .unwrap();
    assert!(matches!(
        check_vp(&p),
        Err(VerifyError::HolderMismatch { .. })
    ));
}
