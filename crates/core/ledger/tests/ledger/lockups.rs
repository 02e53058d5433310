//! Lock-ups per allocation and investor categories: an issuance allocation
//! may lock its units until a day (the wallet's other units move freely),
//! and a token may cap how much an identity of an investor category holds.

use crate::support::*;
use tranche_types::*;

/// Alice is allocated 600 of `T` locked until 2026-06-30, Bob 400 free.
fn issued_with_lockup() -> (World, Person, Person) {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "KR");
    w.register_asset("A-T", usd(10_000_000));
    w.appraise("A-T", usd(10_000_000));
    let mut r = w.request("R-T", "A-T", "T", &[(&a, 600), (&b, 400)], 1_000);
    r.allocations.0[0].lockup_until = Some(date("2026-06-30"));
    w.ok(&w.tsp.clone(), Payload::RequestIssuance(r.clone()));
    w.ok(&w.issuer.clone(), execution(&r));
    (w, a, b)
}

#[test]
fn lock_ups_per_allocation_locked_units_wait_and_other_units_move() {
    let (mut w, a, b) = issued_with_lockup();
    let locked = |w: &World| w.ledger.lockup(&id("T"), &a.wallet()).map(|l| l.units.0);
    assert_eq!(locked(&w), Some(600));
    assert_eq!(w.ledger.lockup(&id("T"), &b.wallet()), None);
    w.rejects(&a.key, w.transfer("T", &b, 1), RejectCode::LockedUp);
    // Units received later are not locked.
    w.ok(&b.key, w.transfer("T", &a, 100));
    w.ok(&a.key, w.transfer("T", &b, 60));
    let r = w.rejects(&a.key, w.transfer("T", &b, 41), RejectCode::LockedUp);
    assert!(r.message.contains("2026-06-30"), "{r}");
    let reasons: Vec<RejectCode> = w
        .ledger
        .transfer_reasons(&w.ctx, &id("T"), &a.wallet(), &b.wallet(), Units(41))
        .into_iter()
        .map(|r| r.code)
        .collect();
    assert_eq!(reasons, vec![RejectCode::LockedUp]);
    w.ok(&a.key, w.transfer("T", &b, 40));
    // The agent may take locked units: the lock-up shrinks with the balance.
    w.ok(
        &w.issuer.clone(),
        Payload::ForcedTransfer(ForcedTransfer {
            token: id("T"),
            from: a.wallet(),
            to: b.wallet(),
            amount: Units(100),
            reason: Memo::new("court order 2026-33").unwrap(),
        }),
    );
    assert_eq!(locked(&w), Some(500));
    // On the day, every unit moves, and the lock-up is gone.
    w.ctx.time = "2026-06-30T00:00:00Z".parse().unwrap();
    w.ok(&a.key, w.transfer("T", &b, 500));
    assert_eq!(locked(&w), None);
}

#[test]
fn lock_ups_per_allocation_stay_out_of_revocations() {
    let (mut w, a, _) = issued_with_lockup();
    w.ok(
        &w.tsp.clone(),
        Payload::RequestRevocation(RequestRevocation {
            request: id("V-1"),
            token: id("T"),
            amount: Units(600),
            redemption: None,
        }),
    );
    let moves = |lockup_until: Option<Date>| {
        Payload::ExecuteRevocation(ExecuteRevocation {
            request: id("V-1"),
            moves: BoundedVec(vec![Allocation {
                wallet: a.wallet(),
                amount: Units(600),
                lockup_until,
            }]),
        })
    };
    w.rejects(
        &w.issuer.clone(),
        moves(Some(date("2027-01-01"))),
        RejectCode::InvalidField,
    );
    // Revoked, the locked units go too, and so does the lock-up.
    w.ok(&w.issuer.clone(), moves(None));
    assert_eq!(w.ledger.lockup(&id("T"), &a.wallet()), None);
}

#[test]
fn investor_categories_cap_what_an_identity_of_the_category_holds() {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "KR");
    let retail = ClaimTopic(1_001);
    let mut rules = default_rules();
    rules.category_limits = BoundedVec(vec![
        CategoryLimit {
            topic: retail,
            max_per_identity: Units(50),
        },
        CategoryLimit {
            topic: ClaimTopic(1_002),
            max_per_identity: Units(500),
        },
    ]);
    w.issue("T", &[(&a, 1_000)], rules);
    // Bob is a retail investor: 50 at most, across his wallets.
    w.claim(&b.did, retail, None);
    w.rejects(
        &a.key,
        w.transfer("T", &b, 51),
        RejectCode::CategoryLimitExceeded,
    );
    w.ok(&a.key, w.transfer("T", &b, 30));
    let second = b.other_wallet(40);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(second.binding()));
    w.rejects(
        &a.key,
        w.transfer("T", &second, 21),
        RejectCode::CategoryLimitExceeded,
    );
    w.ok(&a.key, w.transfer("T", &second, 20));
    // Carol is in no capped category: no cap.
    let c = Person::new(3);
    w.onboard(&c, "KR");
    w.ok(&a.key, w.transfer("T", &c, 600));
    // In both categories, the lowest cap applies.
    w.claim(&c.did, retail, None);
    w.claim(&c.did, ClaimTopic(1_002), None);
    w.rejects(
        &a.key,
        w.transfer("T", &c, 1),
        RejectCode::CategoryLimitExceeded,
    );
}

fn limited(period: LimitPeriod, days: u16) -> (World, Person, Person) {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "KR");
    let mut rules = default_rules();
    rules.transfer_limit = Some(TransferLimit {
        max: Units(100),
        period,
        days,
    });
    w.issue("T", &[(&a, 600), (&b, 400)], rules);
    (w, a, b)
}

#[test]
fn transfer_limits_over_time_a_rolling_period_counts_every_wallet_of_the_identity() {
    let (mut w, a, b) = limited(LimitPeriod::Rolling, 7);
    // A second wallet of alice's identity, with tokens of its own.
    let second = a.other_wallet(41);
    w.ok(&w.tsp.clone(), Payload::RegisterWallet(second.binding()));
    w.ok(&a.key, w.transfer("T", &second, 60));
    w.advance_days(1);
    w.ok(&second.key, w.transfer("T", &b, 40));
    let r = w.rejects(
        &a.key,
        w.transfer("T", &b, 1),
        RejectCode::TransferLimitExceeded,
    );
    assert!(r.message.contains("last 7 days"), "{r}");
    // Bob's own limit is his.
    w.ok(&b.key, w.transfer("T", &a, 100));
    // Seven days after the first 60, they no longer count.
    w.advance_days(6);
    w.ok(&a.key, w.transfer("T", &b, 60));
    w.rejects(
        &a.key,
        w.transfer("T", &b, 1),
        RejectCode::TransferLimitExceeded,
    );
    // The token's agent is exempt: a wallet of its own key sends freely.
    let agent_wallet = Person {
        key: w.issuer.clone(),
        ..Person::new(5)
    };
    w.onboard(&agent_wallet, "KR");
    w.ok(
        &w.issuer.clone(),
        Payload::ForcedTransfer(ForcedTransfer {
            token: id("T"),
            from: b.wallet(),
            to: agent_wallet.wallet(),
            amount: Units(300),
            reason: Memo::new("agent's inventory").unwrap(),
        }),
    );
    w.ok(&w.issuer.clone(), w.transfer("T", &b, 250));
    // A limit with no days is refused.
    let mut bad = default_rules();
    bad.transfer_limit = Some(TransferLimit {
        max: Units(1),
        period: LimitPeriod::Rolling,
        days: 0,
    });
    w.rejects(
        &w.issuer.clone(),
        Payload::SetTokenRules(SetTokenRules {
            token: id("T"),
            rules: bad,
        }),
        RejectCode::InvalidField,
    );
}

#[test]
fn transfer_limits_over_time_a_calendar_month_starts_afresh() {
    let (mut w, a, b) = limited(LimitPeriod::CalendarMonth, 0);
    w.ctx.time = "2026-01-31T12:00:00Z".parse().unwrap();
    w.ok(&a.key, w.transfer("T", &b, 100));
    let r = w.rejects(
        &a.key,
        w.transfer("T", &b, 1),
        RejectCode::TransferLimitExceeded,
    );
    assert!(r.message.contains("calendar month"), "{r}");
    w.ctx.time = "2026-02-01T00:00:00Z".parse().unwrap();
    w.ok(&a.key, w.transfer("T", &b, 100));
}
