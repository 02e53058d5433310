//! Bindings with their owners' consent (SR-3, SR-5, ST-3): nobody binds a
//! wallet to a DID, or opens a custodial wallet, without the person's own
//! signatures, and only the holder's own keys instruct a custodial move.

use crate::support::*;
use tranche_crypto::Domain;
use tranche_ledger::*;
use tranche_types::*;

fn chain() -> ChainId {
    id(CHAIN)
}

/// A world where alice holds 600 and bob 400 of token `T`, and alice keeps
/// 200 of them in her custodial wallet at safe-custody.
fn custody_world() -> (World, Person, Person, WalletAddress) {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "US");
    w.tokenize("T", &[(&a, 600), (&b, 400)]);
    let vault = w.entrust(&a, 200);
    (w, a, b, vault)
}

#[test]
fn sr5_a_binding_needs_the_wallet_keys_consent() {
    let mut w = World::new();
    let a = Person::new(1);
    let tsp = w.tsp.clone();
    // Signed by the DID's key only: the wallet never agreed.
    let mut p = a.binding();
    p.wallet_signature = a.id_key.sign(
        Domain::WalletBinding,
        &chain(),
        &Ledger::binding_message(&a.wallet(), &a.did),
    );
    w.rejects(&tsp, Payload::RegisterWallet(p), RejectCode::ConsentMissing);
    // The wallet key's signature, but under the DID-control domain.
    let mut p = a.binding();
    p.wallet_signature = p.did_signature;
    w.rejects(&tsp, Payload::RegisterWallet(p), RejectCode::ConsentMissing);
    // A key that is not the wallet's.
    let mut p = a.binding();
    p.wallet_key = key(90).public_key();
    w.rejects(&tsp, Payload::RegisterWallet(p), RejectCode::InvalidField);
    w.ok(&tsp, Payload::RegisterWallet(a.binding()));
    assert_eq!(w.ledger.identity(&a.wallet()), Some(&a.did));
}

#[test]
fn sr5_a_binding_needs_proof_of_control_of_the_did() {
    let mut w = World::new();
    let a = Person::new(1);
    let tsp = w.tsp.clone();
    // A wallet of someone else's names Alice's DID: it cannot prove control.
    let mallory = Person {
        key: key(90),
        ..a.clone()
    };
    let mut p = mallory.binding();
    p.did_signature = mallory.key.sign(
        Domain::DidControl,
        &chain(),
        &Ledger::binding_message(&mallory.wallet(), &a.did),
    );
    w.rejects(&tsp, Payload::RegisterWallet(p), RejectCode::ConsentMissing);
    // Alice's proof for one wallet does not bind another.
    let mut p = mallory.binding();
    p.did_signature = a.binding().did_signature;
    w.rejects(&tsp, Payload::RegisterWallet(p), RejectCode::ConsentMissing);
    // Nor does a proof made for another chain.
    let other: ChainId = id("tranche-other");
    let message = Ledger::binding_message(&a.wallet(), &a.did);
    let p = RegisterWallet {
        wallet_signature: a.key.sign(Domain::WalletBinding, &other, &message),
        did_signature: a.id_key.sign(Domain::DidControl, &other, &message),
        ..a.binding()
    };
    w.rejects(&tsp, Payload::RegisterWallet(p), RejectCode::ConsentMissing);
    // The same key may be both the wallet and the DID.
    let own = Person {
        key: key(91),
        id_key: key(91),
        did: did_of(&key(91)),
    };
    w.ok(&tsp, Payload::RegisterWallet(own.binding()));
}

#[test]
fn sr5_a_did_key_must_decode_to_an_ed25519_key() {
    let mut w = World::new();
    let fake = Did::parse("did:key:z6MkAlice1").unwrap();
    let web = Did::parse("did:web:example.com").unwrap();
    let a = Person::new(1);
    for did in [fake, web] {
        let p = RegisterWallet {
            did: did.clone(),
            ..a.binding()
        };
        w.rejects(
            &w.tsp.clone(),
            Payload::RegisterWallet(p),
            RejectCode::InvalidDid,
        );
        w.rejects(
            &w.claims.clone(),
            Payload::AddClaim(AddClaim {
                did: did.clone(),
                topic: ClaimTopic::KYC,
                country: None,
                digest: Hash([7; 32]),
                expiry_date: date("2026-12-31"),
            }),
            RejectCode::InvalidDid,
        );
        w.rejects(
            &w.tsp.clone(),
            Payload::RegisterAsset(RegisterAsset {
                asset: id("A-1"),
                owner: did.clone(),
                kind: AssetKind::Tangible,
                description: Hash([1; 32]),
                price: usd(10_000_000),
            }),
            RejectCode::InvalidDid,
        );
        w.rejects(
            &w.custodian.clone(),
            Payload::OpenCustodialWallet(OpenCustodialWallet {
                holder: did,
                consent: Signature::unset(),
            }),
            RejectCode::InvalidDid,
        );
    }
    // A well-formed did:key of a small-order point is no usable key either.
    let mut bytes = vec![0xed, 0x01];
    bytes.extend_from_slice(&[0u8; 32]);
    let weak = Did::parse(&format!("did:key:z{}", bs58::encode(&bytes).into_string())).unwrap();
    refused_with(Ledger::did_key(&weak), RejectCode::InvalidDid);
}

#[test]
fn st3_a_custodian_cannot_bind_its_own_key_to_a_holder() {
    let (mut w, a, b, vault) = custody_world();
    let custodian = w.custodian.clone();
    // The custodian binds a key of its own to Alice's DID: no proof of control.
    let own = key(77);
    let message = Ledger::binding_message(&own.address(), &a.did);
    let forged = RegisterWallet {
        wallet: own.address(),
        did: a.did.clone(),
        wallet_key: own.public_key(),
        wallet_signature: own.sign(Domain::WalletBinding, &chain(), &message),
        did_signature: own.sign(Domain::DidControl, &chain(), &message),
    };
    w.rejects(
        &custodian,
        Payload::RegisterWallet(forged),
        RejectCode::ConsentMissing,
    );
    // So that key's authorization is nobody's.
    let p = custodial_transfer(&w, &own, &b, 50);
    w.rejects(&custodian, p, RejectCode::HolderAuthorizationMissing);
    // Nor does the custodian's own key authorize a move.
    let p = custodial_transfer(&w, &custodian, &b, 50);
    w.rejects(&custodian, p, RejectCode::HolderAuthorizationMissing);
    assert_eq!(w.balance("T", &vault), 200);
    // Alice's wallet key's authorization, carried by the custodian, does.
    let p = custodial_transfer(&w, &a.key, &b, 50);
    w.ok(&custodian, p);
    assert_eq!(w.balance("T", &vault), 150);
}

#[test]
fn sr3_the_holder_authorizes_with_their_did_key_too() {
    let (mut w, a, b, vault) = custody_world();
    let custodian = w.custodian.clone();
    let p = custodial_transfer(&w, &a.id_key, &b, 50);
    w.ok(&custodian, p);
    assert_eq!(w.balance("T", &vault), 150);
    // Sent by the holder instead of the custodian, it does not.
    let p = custodial_transfer(&w, &a.id_key, &b, 50);
    w.rejects(&a.id_key, p, RejectCode::NotAdmitted);
}

#[test]
fn st3_a_custodial_wallet_opens_only_with_the_holders_consent() {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    let custodian = w.custodian.clone();
    // No consent, consent by someone else, consent to another custodian.
    let unsigned = OpenCustodialWallet {
        holder: a.did.clone(),
        consent: Signature::unset(),
    };
    w.rejects(
        &custodian,
        Payload::OpenCustodialWallet(unsigned),
        RejectCode::ConsentMissing,
    );
    let by_bob = OpenCustodialWallet {
        holder: a.did.clone(),
        consent: b.custody("safe-custody").consent,
    };
    w.rejects(
        &custodian,
        Payload::OpenCustodialWallet(by_bob),
        RejectCode::ConsentMissing,
    );
    w.rejects(
        &custodian,
        Payload::OpenCustodialWallet(a.custody("other-custody")),
        RejectCode::ConsentMissing,
    );
    w.ok(
        &custodian,
        Payload::OpenCustodialWallet(a.custody("safe-custody")),
    );
    let vault = Ledger::custodial_wallet(&id("safe-custody"), &a.did);
    assert_eq!(w.ledger.identity(&vault), Some(&a.did));
}
