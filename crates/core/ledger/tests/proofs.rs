//! Proofs of single records against the state root: a party checks a
//! balance, an issuance, a revocation, a claim or a custody binding with
//! the proof alone, and nothing altered passes (SR-1, SR-2, REC-2).

mod support;

use support::*;
use tranche_ledger::*;
use tranche_types::*;

/// A world with a token `T` held by two people, one of them through a
/// custodial wallet, and a third person with no balance.
fn world() -> (World, Person, Person, Person) {
    let mut w = World::new();
    let (a, b, c) = (Person::new(1), Person::new(2), Person::new(3));
    for p in [&a, &b, &c] {
        w.onboard(p, "KR");
    }
    w.tokenize("T", &[(&a, 600), (&b, 400)]);
    w.entrust(&a, 100);
    (w, a, b, c)
}

#[test]
fn a_balance_proof_holds_against_the_state_root_and_says_the_balance() {
    let (w, a, _, _) = world();
    let root = w.ledger.state_root();
    let proof = w.ledger.prove_balance(&id("T"), &a.wallet());
    proof.verify(&root).unwrap();
    let (key, value) = proof.describe().unwrap();
    assert!(
        key.contains(&a.wallet().to_string()) || key.contains("T"),
        "{key}"
    );
    assert_eq!(value.as_deref(), Some("Units(500)"));
    // It travels as JSON and still holds.
    let json = serde_json::to_string(&proof).unwrap();
    let back: StateProof = serde_json::from_str(&json).unwrap();
    back.verify(&root).unwrap();
}

#[test]
fn an_altered_proof_or_another_root_does_not_hold() {
    let (mut w, a, b, _) = world();
    let root = w.ledger.state_root();
    let proof = w.ledger.prove_balance(&id("T"), &a.wallet());

    // Another value.
    let mut more = proof.clone();
    let mut bytes = hex::decode(more.value.as_ref().unwrap()).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    more.value = Some(hex::encode(bytes));
    assert!(matches!(more.verify(&root), Err(ProofError::Invalid(_))));

    // The same value claimed for another wallet.
    let mut other = proof.clone();
    other.key = w.ledger.prove_balance(&id("T"), &b.wallet()).key;
    assert!(other.verify(&root).is_err());

    // Absent instead of present.
    let mut gone = proof.clone();
    gone.value = None;
    assert!(gone.verify(&root).is_err());

    // Another table.
    let mut table = proof.clone();
    table.table = "freezes".into();
    assert!(table.verify(&root).is_err());

    // Once the balance moved, the old proof does not hold against the new
    // root, and a new proof does.
    let p = w.transfer("T", &b, 1);
    w.ok(&a.key, p);
    let new_root = w.ledger.state_root();
    assert!(matches!(
        proof.verify(&new_root),
        Err(ProofError::WrongRoot { .. })
    ));
    let fresh = w.ledger.prove_balance(&id("T"), &a.wallet());
    fresh.verify(&new_root).unwrap();
    assert_eq!(fresh.describe().unwrap().1.as_deref(), Some("Units(499)"));
}

#[test]
fn absence_is_proved_too() {
    let (w, _, _, c) = world();
    let root = w.ledger.state_root();
    let proof = w.ledger.prove_balance(&id("T"), &c.wallet());
    assert_eq!(proof.value, None);
    proof.verify(&root).unwrap();
    // Claiming a balance where there is none fails.
    let mut claimed = proof.clone();
    let mut units = Vec::new();
    tranche_types::commonware_codec::Write::write(&Units(5), &mut units);
    claimed.value = Some(hex::encode(units));
    assert!(claimed.verify(&root).is_err());
}

#[test]
fn issuances_revocations_claims_and_custody_are_provable() {
    let (w, a, _, _) = world();
    let root = w.ledger.state_root();
    let issuance = w.ledger.prove_issuance(&id("R-T"));
    issuance.verify(&root).unwrap();
    let text = issuance.describe().unwrap().1.unwrap();
    assert!(text.contains("issued: Some(Units(1000))"), "{text}");

    let revocation = w.ledger.prove_revocation(&id("RV-none"));
    revocation.verify(&root).unwrap();
    assert_eq!(revocation.value, None);

    let claim = w.ledger.prove_claim(&a.did, ClaimTopic::KYC, &id("kyc-co"));
    claim.verify(&root).unwrap();
    assert!(claim.describe().unwrap().1.unwrap().contains("digest"));

    let vault = Ledger::custodial_wallet(&id("safe-custody"), &a.did);
    let custody = w.ledger.prove_custody(&vault);
    custody.verify(&root).unwrap();
    assert!(custody
        .describe()
        .unwrap()
        .1
        .unwrap()
        .contains("safe-custody"));
}

#[test]
fn a_proof_of_a_table_or_key_the_state_has_not_is_refused() {
    let (w, _, _, _) = world();
    assert!(matches!(
        w.ledger.prove("no-such-table", &[]),
        Err(ProofRequestError::UnknownTable(_))
    ));
    assert!(matches!(
        w.ledger.prove("balances", &[1, 2, 3]),
        Err(ProofRequestError::BadKey(_))
    ));
}

#[test]
fn the_root_follows_the_records_whatever_the_order_they_were_written_in() {
    // The same people onboarded in the opposite order give the same root.
    let people: Vec<Person> = (1..=6).map(Person::new).collect();
    let mut forward = World::new();
    for p in &people {
        forward.onboard(p, "KR");
        forward.ledger.state_root();
    }
    let mut backward = World::new();
    for p in people.iter().rev() {
        backward.onboard(p, "KR");
    }
    // Nonces and heights differ by nothing: each onboarding is three
    // transactions from the same two organisations.
    assert_eq!(forward.ledger.state(), backward.ledger.state());
    assert_eq!(forward.ledger.state_root(), backward.ledger.state_root());
    // A copy brought up to date on its own agrees with the original.
    let copy = forward.ledger.clone();
    assert_eq!(copy.state_root(), forward.ledger.state_root());
}

#[test]
fn the_tree_keeps_only_the_nodes_of_the_current_state() {
    let (mut w, a, b, _) = world();
    let nodes = w.ledger.state().tree_nodes();
    // A hundred transfers back and forth, the root brought up to date after
    // each: the records are the same in number, and so are the nodes
    // (nodes replaced by an update are dropped, not kept for old roots).
    for i in 0..100 {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let p = w.transfer("T", to, 1);
        w.ok(&from.key, p);
        w.ledger.state_root();
    }
    let after = w.ledger.state().tree_nodes();
    assert!(after <= nodes + 8, "{nodes} nodes before, {after} after");
}
