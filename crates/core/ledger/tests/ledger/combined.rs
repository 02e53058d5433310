//! Compliance on the combined effect of a transaction (L-1): a settlement's
//! legs and an issuance's allocations are checked together, never each
//! alone against the state before the transaction. Property test: an
//! applied settlement is what its legs applied one by one would give.

use crate::support::*;
use proptest::prelude::*;
use tranche_crypto::Domain;
use tranche_ledger::*;
use tranche_types::*;

fn leg(token: &str, from: &Person, to: &Person, amount: u128) -> Leg {
    Leg {
        token: id(token),
        from: from.wallet(),
        to: to.wallet(),
        amount: Units(amount),
    }
}

fn settle(legs: Vec<Leg>) -> Payload {
    Payload::Settle(Settle {
        legs: BoundedVec(legs),
        approvals: BoundedVec::default(),
    })
}

fn people(w: &mut World, n: u8) -> Vec<Person> {
    (1..=n)
        .map(|i| {
            let p = Person::new(i);
            w.onboard(&p, "KR");
            p
        })
        .collect()
}

#[test]
fn l1_a_settlement_cannot_move_partly_frozen_units_in_several_legs() {
    let mut w = World::new();
    let ps = people(&mut w, 2);
    let (a, b) = (&ps[0], &ps[1]);
    w.issue_with_rules(&[(a, 1_000)], default_rules());
    w.ok(
        &w.issuer.clone(),
        Payload::FreezePartial(FreezePartial {
            token: id("T"),
            wallet: a.wallet(),
            amount: Units(700),
        }),
    );
    w.rejects(&a.key, w.transfer("T", b, 400), RejectCode::WalletFrozen);
    // Two legs of 300: each alone would fit in the 300 free units, both do not.
    w.rejects(
        &a.key,
        settle(vec![leg("T", a, b, 300), leg("T", a, b, 300)]),
        RejectCode::WalletFrozen,
    );
    w.ok(
        &a.key,
        settle(vec![leg("T", a, b, 200), leg("T", a, b, 100)]),
    );
    assert_eq!(w.balance("T", &a.wallet()), 700);
    w.rejects(
        &a.key,
        settle(vec![leg("T", a, b, 1)]),
        RejectCode::WalletFrozen,
    );
}

#[test]
fn l1_a_settlement_cannot_pass_the_per_identity_limit_in_several_legs() {
    let mut w = World::new();
    let ps = people(&mut w, 2);
    let (a, b) = (&ps[0], &ps[1]);
    let mut rules = default_rules();
    rules.max_balance_per_identity = Units(700);
    w.issue_with_rules(&[(a, 700), (b, 300)], rules);
    w.ok(&a.key, w.transfer("T", b, 200));
    // Bob holds 500 of at most 700: 250 is too many in one transfer ...
    w.rejects(
        &a.key,
        w.transfer("T", b, 250),
        RejectCode::MaxBalanceExceeded,
    );
    // ... and in two legs of 150 ...
    w.rejects(
        &a.key,
        settle(vec![leg("T", a, b, 150), leg("T", a, b, 150)]),
        RejectCode::MaxBalanceExceeded,
    );
    // ... and across two wallets of Bob's.
    let b2 = b.other_wallet(150);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(b2.binding()));
    w.rejects(
        &a.key,
        settle(vec![leg("T", a, b, 150), leg("T", a, &b2, 150)]),
        RejectCode::MaxBalanceExceeded,
    );
    w.ok(
        &a.key,
        settle(vec![leg("T", a, b, 150), leg("T", a, &b2, 50)]),
    );
    assert_eq!(
        w.balance("T", &b.wallet()) + w.balance("T", &b2.wallet()),
        700
    );
}

#[test]
fn l1_a_settlement_cannot_pass_the_holder_limit_in_several_legs() {
    let mut w = World::new();
    let ps = people(&mut w, 4);
    let mut rules = default_rules();
    rules.max_holders = 3;
    w.issue_with_rules(&[(&ps[0], 600), (&ps[1], 400)], rules);
    // One newcomer fits, two do not.
    w.rejects(
        &ps[0].key,
        settle(vec![
            leg("T", &ps[0], &ps[2], 1),
            leg("T", &ps[0], &ps[3], 1),
        ]),
        RejectCode::MaxHoldersReached,
    );
    w.ok(&ps[0].key, settle(vec![leg("T", &ps[0], &ps[2], 1)]));
    assert_eq!(w.ledger.token(&id("T")).unwrap().holders, 3);
}

#[test]
fn l1_an_issuance_counts_every_wallet_of_an_identity_together() {
    let mut w = World::new();
    let ps = people(&mut w, 2);
    let a2 = ps[0].other_wallet(150);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(a2.binding()));
    w.register_asset("A-T", usd(10_000_000));
    w.appraise("A-T", usd(10_000_000));
    let mut r = w.request(
        "R-T",
        "A-T",
        "T",
        &[(&ps[0], 400), (&a2, 400), (&ps[1], 200)],
        1_000,
    );
    r.rules.max_balance_per_identity = Units(600);
    w.ok(&w.tsp.clone(), Payload::RequestIssuance(r.clone()));
    // Each allocation alone is under 600; Alice's two add up to 800.
    w.rejects(
        &w.issuer.clone(),
        Payload::ExecuteIssuance(ExecuteIssuance {
            request: r.request.clone(),
            amount: r.amount,
            allocations: r.allocations.clone(),
        }),
        RejectCode::MaxBalanceExceeded,
    );
    assert!(w.ledger.token(&id("T")).is_none(), "nothing was issued");
}

#[test]
fn l1_a_refused_leg_puts_the_earlier_legs_back() {
    let mut w = World::new();
    let ps = people(&mut w, 3);
    w.issue_with_rules(&[(&ps[0], 500), (&ps[1], 500)], default_rules());
    // Alice pays Carol, who passes it on to Bob, then Alice overspends.
    let legs = vec![
        leg("T", &ps[0], &ps[2], 100),
        leg("T", &ps[2], &ps[1], 100),
        leg("T", &ps[0], &ps[1], 401),
    ];
    let nonce = w.ledger.next_nonce(&ps[0].key.public_key());
    let digest = Ledger::settlement_digest(&ps[0].key.public_key(), nonce, &legs);
    let approval = Approval {
        key: ps[2].key.public_key(),
        signature: ps[2].key.sign(Domain::Transaction, &id(CHAIN), &digest),
    };
    w.rejects(
        &ps[0].key,
        Payload::Settle(Settle {
            legs: BoundedVec(legs),
            approvals: BoundedVec(vec![approval]),
        }),
        RejectCode::InsufficientBalance,
    );
}

// --- Property: applied => the legs one by one pass, and the invariants hold ---

const PEOPLE: u8 = 4;

/// A world of four holders of `T` (250 each, per-identity limit 400, at most
/// three holders) with part of two balances frozen.
fn property_world() -> (World, Vec<Person>) {
    let mut w = World::new();
    let ps = people(&mut w, PEOPLE);
    let mut rules = default_rules();
    rules.max_balance_per_identity = Units(400);
    rules.max_holders = 4;
    let investors: Vec<(&Person, u128)> = ps.iter().map(|p| (p, 250)).collect();
    w.issue_with_rules(&investors, rules);
    for (p, frozen) in [(&ps[0], 100), (&ps[1], 200)] {
        w.ok(
            &w.issuer.clone(),
            Payload::FreezePartial(FreezePartial {
                token: id("T"),
                wallet: p.wallet(),
                amount: Units(frozen),
            }),
        );
    }
    (w, ps)
}

/// A copy of the property world, built once.
fn fresh_property_world() -> (World, Vec<Person>) {
    static BUILT: std::sync::OnceLock<(Ledger, BlockContext)> = std::sync::OnceLock::new();
    let (ledger, ctx) = BUILT.get_or_init(|| {
        let (w, _) = property_world();
        (w.ledger, w.ctx)
    });
    let ps = (1..=PEOPLE).map(Person::new).collect();
    let w = World {
        ledger: ledger.clone(),
        ctx: *ctx,
        ..World::new()
    };
    (w, ps)
}

fn approvals(w: &World, signer: &Person, ps: &[Person], legs: &[Leg]) -> Vec<Approval> {
    let nonce = w.ledger.next_nonce(&signer.key.public_key());
    let digest = Ledger::settlement_digest(&signer.key.public_key(), nonce, legs);
    ps.iter()
        .filter(|p| p.wallet() != signer.wallet() && legs.iter().any(|l| l.from == p.wallet()))
        .map(|p| Approval {
            key: p.key.public_key(),
            signature: p.key.sign(Domain::Transaction, &id(CHAIN), &digest),
        })
        .collect()
}

fn frozen_within_balances(w: &World) {
    for ((token, wallet), f) in &w.ledger.state().freezes {
        assert!(
            f.amount <= w.ledger.balance(token, wallet),
            "frozen ≤ balance"
        );
    }
}

fn identities_within_limit(w: &World, ps: &[Person]) {
    for p in ps {
        assert!(w.balance("T", &p.wallet()) <= 400, "per-identity limit");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn an_applied_settlement_is_its_legs_applied_one_by_one(
        raw in proptest::collection::vec((0..PEOPLE, 0..PEOPLE, 1u128..260), 1..6),
        signer in 0..PEOPLE,
    ) {
        let (mut w, ps) = fresh_property_world();
        let legs: Vec<Leg> = raw
            .iter()
            .filter(|(f, t, _)| f != t)
            .map(|(f, t, n)| leg("T", &ps[*f as usize], &ps[*t as usize], *n))
            .collect();
        prop_assume!(!legs.is_empty());
        let signer = &ps[signer as usize];
        let approvals = approvals(&w, signer, &ps, &legs);
        let mut one_by_one = World {
            ledger: w.ledger.clone(),
            ctx: w.ctx,
            ..World::new()
        };
        let outcome = w.send(
            &signer.key,
            Payload::Settle(Settle {
                legs: BoundedVec(legs.clone()),
                approvals: BoundedVec(approvals),
            }),
        );
        frozen_within_balances(&w);
        identities_within_limit(&w, &ps);
        if outcome == Outcome::Applied {
            for l in &legs {
                let from = ps.iter().find(|p| p.wallet() == l.from).unwrap();
                let to = ps.iter().find(|p| p.wallet() == l.to).unwrap();
                let single = one_by_one.send(&from.key, one_by_one.transfer("T", to, l.amount.0));
                prop_assert_eq!(single, Outcome::Applied, "leg {:?} alone, in order", l);
            }
            for p in &ps {
                prop_assert_eq!(
                    w.balance("T", &p.wallet()),
                    one_by_one.balance("T", &p.wallet())
                );
            }
        }
    }
}
