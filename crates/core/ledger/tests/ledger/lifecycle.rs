//! Requests a TSP takes back (F5-4) and the revocation wallet that nothing
//! leaves, by any path (L-2, REC-6).

use crate::support::*;
use tranche_ledger::*;
use tranche_types::*;

/// A world with the paper's asset registered and appraised, and alice onboarded.
fn appraised() -> (World, Person) {
    let mut w = World::new();
    let a = Person::new(1);
    w.onboard(&a, "KR");
    w.register_asset("A-T", usd(10_000_000));
    w.appraise("A-T", usd(10_000_000));
    (w, a)
}

fn withdraw(request: &str) -> Payload {
    Payload::WithdrawIssuance(WithdrawIssuance {
        request: id(request),
    })
}

#[test]
fn f5_4_a_tsp_withdraws_its_request_and_frees_the_token_id() {
    let (mut w, a) = appraised();
    let tsp = w.tsp.clone();
    let r = w.request("R-1", "A-T", "T", &[(&a, 1_000)], 1_000);
    w.ok(&tsp, Payload::RequestIssuance(r.clone()));
    // The token id is taken while the request stands.
    let again = w.request("R-2", "A-T", "T", &[(&a, 1_000)], 1_000);
    w.rejects(
        &tsp,
        Payload::RequestIssuance(again.clone()),
        RejectCode::AlreadyExists,
    );
    // Only the TSP that filed it withdraws it.
    w.rejects(&w.issuer.clone(), withdraw("R-1"), RejectCode::MissingRole);
    let other_tsp = key(54);
    admit(&mut w, "other-tsp", &other_tsp, Some(Role::Tsp));
    w.rejects(&other_tsp, withdraw("R-1"), RejectCode::NotTheTsp);
    w.rejects(&tsp, withdraw("R-404"), RejectCode::UnknownRequest);
    w.ok(&tsp, withdraw("R-1"));
    let check = w.ledger.issuance_check(&id("R-1")).unwrap();
    assert!(check.withdrawn && check.issued.is_none());
    w.rejects(&tsp, withdraw("R-1"), RejectCode::RequestWithdrawn);
    // The issuer can no longer carry it out.
    w.rejects(
        &w.issuer.clone(),
        Payload::ExecuteIssuance(ExecuteIssuance {
            request: r.request,
            amount: r.amount,
            allocations: r.allocations,
        }),
        RejectCode::RequestWithdrawn,
    );
    // The token id is free again; the request id stays used.
    w.rejects(
        &tsp,
        Payload::RequestIssuance(w.request("R-1", "A-T", "T", &[(&a, 1_000)], 1_000)),
        RejectCode::AlreadyExists,
    );
    w.ok(&tsp, Payload::RequestIssuance(again.clone()));
    w.ok(
        &w.issuer.clone(),
        Payload::ExecuteIssuance(ExecuteIssuance {
            request: again.request,
            amount: again.amount,
            allocations: again.allocations,
        }),
    );
    // A request carried out is revoked, not withdrawn.
    w.rejects(&tsp, withdraw("R-2"), RejectCode::RequestAlreadyExecuted);
}

#[test]
fn l2_rec6_every_path_out_of_a_revocation_wallet_is_locked() {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "US");
    w.tokenize("T", &[(&a, 600), (&b, 400)]);
    let (tsp, issuer) = (w.tsp.clone(), w.issuer.clone());
    w.ok(
        &tsp,
        Payload::RequestRevocation(RequestRevocation {
            request: id("V-1"),
            token: id("T"),
            amount: Units(100),
            redemption: None,
        }),
    );
    w.ok(
        &issuer,
        Payload::ExecuteRevocation(ExecuteRevocation {
            request: id("V-1"),
            moves: BoundedVec(vec![Allocation {
                wallet: a.wallet(),
                amount: Units(100),
                lockup_until: None,
            }]),
        }),
    );
    let rev = Ledger::revocation_wallet(&id("T"));
    assert_eq!(w.balance("T", &rev), 100);
    // Recovery, as if the revocation wallet were a lost wallet of Alice's.
    w.rejects(
        &issuer,
        Payload::RecoverWallet(RecoverWallet {
            token: id("T"),
            lost: rev,
            new: a.wallet(),
        }),
        RejectCode::RevocationWalletLocked,
    );
    // A forced transfer.
    w.rejects(
        &issuer,
        Payload::ForcedTransfer(ForcedTransfer {
            token: id("T"),
            from: rev,
            to: a.wallet(),
            amount: Units(1),
            reason: Memo::new("court order").unwrap(),
        }),
        RejectCode::RevocationWalletLocked,
    );
    // A settlement leg (before any question of approvals).
    w.rejects(
        &a.key,
        Payload::Settle(Settle {
            legs: BoundedVec(vec![Leg {
                token: id("T"),
                from: rev,
                to: a.wallet(),
                amount: Units(1),
            }]),
            approvals: BoundedVec::default(),
        }),
        RejectCode::RevocationWalletLocked,
    );
    // A revocation moving revoked units again.
    w.ok(
        &tsp,
        Payload::RequestRevocation(RequestRevocation {
            request: id("V-2"),
            token: id("T"),
            amount: Units(1),
            redemption: None,
        }),
    );
    w.rejects(
        &issuer,
        Payload::ExecuteRevocation(ExecuteRevocation {
            request: id("V-2"),
            moves: BoundedVec(vec![Allocation {
                wallet: rev,
                amount: Units(1),
                lockup_until: None,
            }]),
        }),
        RejectCode::RevocationWalletLocked,
    );
    assert_eq!(w.balance("T", &rev), 100);
}

// --- Audit anchors (REC-9) ---------------------------------------------------

#[test]
fn rec9_an_audit_anchor_only_moves_forward_and_only_for_an_organisation() {
    let mut w = World::new();
    let anchor = |entries: u64, byte: u8| {
        Payload::AnchorAudit(AnchorAudit {
            entries,
            head: Hash([byte; 32]),
        })
    };
    let issuer = w.issuer.clone();
    w.ok(&issuer, anchor(3, 1));
    let org = w
        .ledger
        .organisation_of_key(&issuer.public_key())
        .unwrap()
        .clone();
    let a = w.ledger.audit_anchor(&org).unwrap().clone();
    assert_eq!((a.entries, a.head), (3, Hash([1; 32])));
    // The same count again, or fewer: a log cut back or rewritten.
    w.rejects(&issuer, anchor(3, 2), RejectCode::AuditAnchorNotAfter);
    w.rejects(&issuer, anchor(2, 2), RejectCode::AuditAnchorNotAfter);
    w.ok(&issuer, anchor(7, 3));
    assert_eq!(w.ledger.audit_anchor(&org).unwrap().entries, 7);
    // Someone who is no organisation.
    let stranger = tranche_crypto::Keypair::from_seed(&[201; 32]);
    w.rejects(&stranger, anchor(1, 1), RejectCode::NotAdmitted);
}

#[test]
fn f6_1_the_aml_policy_is_published_by_the_regulator_in_versions_that_take_effect_later() {
    let mut w = World::new();
    let policy = |sanctioned: Vec<Did>| AmlPolicy {
        report_period_secs: 3_600,
        limits: BoundedVec(vec![AmlLimit {
            asset: id("USD"),
            large_value: Units(1_000_000),
            daily_value_max: Units(5_000_000),
            travel_rule_value: Units(100_000),
        }]),
        blocked_countries: BoundedVec(vec![CountryCode::new("KP").unwrap()]),
        sanctioned: BoundedVec(sanctioned),
    };
    let publish = |version: u32, effective_height: u64, sanctioned: Vec<Did>| {
        Payload::PublishAmlPolicy(PublishAmlPolicy {
            version,
            effective_height,
            policy: policy(sanctioned),
        })
    };
    let (regulator, exchange) = (w.regulator.clone(), w.exchange.clone());
    let h = w.ctx.height;
    // Only a regulator publishes.
    w.rejects(
        &exchange,
        publish(1, h + 5, vec![]),
        RejectCode::MissingRole,
    );
    // Versions start at 1 and take effect after the block carrying them.
    w.rejects(
        &regulator,
        publish(2, h + 5, vec![]),
        RejectCode::AmlPolicyOutOfOrder,
    );
    let h = w.ctx.height;
    w.rejects(
        &regulator,
        publish(1, h, vec![]),
        RejectCode::AmlPolicyOutOfOrder,
    );
    let h = w.ctx.height;
    w.ok(&regulator, publish(1, h + 2, vec![]));
    assert!(w.ledger.aml_policy_at(h + 1).is_none(), "not yet in force");
    let (v, p) = w.ledger.aml_policy_at(h + 2).unwrap();
    assert_eq!((v, p.effective_height, p.published_height), (1, h + 2, h));
    assert_eq!(p.regulator.as_str(), "aml-regulator");
    assert!(p.policy.is_blocked(&CountryCode::new("KP").unwrap()));
    assert_eq!(
        p.policy.limit("USD").unwrap().daily_value_max,
        Units(5_000_000)
    );
    // The next version, with a sanctioned identity, replaces it from its height.
    let bad = Person::new(9).did;
    w.rejects(
        &regulator,
        publish(1, h + 20, vec![]),
        RejectCode::AmlPolicyOutOfOrder,
    );
    let h2 = w.ctx.height;
    w.ok(&regulator, publish(2, h2 + 10, vec![bad.clone()]));
    assert_eq!(w.ledger.aml_policy_at(h2 + 9).unwrap().0, 1);
    let (v, p) = w.ledger.aml_policy_at(h2 + 10).unwrap();
    assert_eq!(v, 2);
    assert!(p.policy.is_sanctioned(bad.as_str()));
    assert_eq!(w.ledger.aml_policies().count(), 2);
}
