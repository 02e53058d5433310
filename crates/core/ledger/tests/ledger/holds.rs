//! Holds: part of a holder's balance held for a notary until an expiry,
//! executed by the notary to the receiver (the rules checked), released by
//! it, or by anyone once expired; held units are spent no other way.

use crate::administration::{codes, forced, issued};
use crate::support::*;
use tranche_ledger::*;
use tranche_types::*;

fn hold(
    w: &World,
    id_: &str,
    amount: u128,
    notary: &Person,
    receiver: Option<&Person>,
    days: u64,
) -> Payload {
    Payload::CreateHold(CreateHold {
        hold: id(id_),
        token: id("T"),
        amount: Units(amount),
        notary: notary.wallet(),
        receiver: receiver.map(Person::wallet),
        expiry: w.ctx.time.plus_ms(days * MS_PER_DAY),
    })
}

fn execute(id_: &str, to: Option<&Person>) -> Payload {
    Payload::ExecuteHold(ExecuteHold {
        hold: id(id_),
        to: to.map(Person::wallet),
    })
}

fn release(id_: &str) -> Payload {
    Payload::ReleaseHold(ReleaseHold { hold: id(id_) })
}

#[test]
fn holds_held_units_move_only_by_the_notary_to_the_receiver() {
    let (mut w, a, b) = issued();
    let notary = Person::new(8);
    w.rejects(
        &a.key,
        hold(&w, "H-1", 0, &notary, Some(&b), 1),
        RejectCode::ZeroAmount,
    );
    w.rejects(
        &a.key,
        hold(&w, "H-1", 601, &notary, Some(&b), 1),
        RejectCode::FundsHeld,
    );
    w.rejects(
        &a.key,
        hold(&w, "H-1", 10, &notary, Some(&b), 0),
        RejectCode::InvalidField,
    );
    w.rejects(
        &a.key,
        hold(&w, "H-1", 10, &a, Some(&b), 1),
        RejectCode::InvalidField,
    );
    w.ok(&a.key, hold(&w, "H-1", 100, &notary, Some(&b), 7));
    w.rejects(
        &a.key,
        hold(&w, "H-1", 1, &notary, None, 7),
        RejectCode::AlreadyExists,
    );
    // Held units cannot be spent otherwise, nor held twice.
    w.rejects(&a.key, w.transfer("T", &b, 501), RejectCode::FundsHeld);
    w.rejects(
        &a.key,
        hold(&w, "H-2", 501, &notary, None, 7),
        RejectCode::FundsHeld,
    );
    let codes = codes(&w, &a, &b, 501);
    assert_eq!(codes, vec![RejectCode::FundsHeld]);
    w.ok(&a.key, w.transfer("T", &b, 500));
    w.rejects(&a.key, w.transfer("T", &b, 1), RejectCode::FundsHeld);
    // Only the notary executes, and the holder cannot take it back.
    w.rejects(&b.key, execute("H-1", None), RejectCode::NotTheNotary);
    w.rejects(&a.key, release("H-1"), RejectCode::NotTheNotary);
    w.rejects(
        &notary.key,
        execute("H-1", Some(&a)),
        RejectCode::InvalidField,
    );
    w.rejects(&notary.key, execute("H-9", None), RejectCode::UnknownHold);
    w.ok(&notary.key, execute("H-1", None));
    assert_eq!(
        (w.balance("T", &a.wallet()), w.balance("T", &b.wallet())),
        (0, 1_000)
    );
    assert_eq!(
        w.ledger.hold(&id("H-1")).unwrap().state,
        HoldState::Executed
    );
    w.rejects(&notary.key, execute("H-1", None), RejectCode::HoldClosed);
    w.rejects(&notary.key, release("H-1"), RejectCode::HoldClosed);
}

#[test]
fn holds_the_receiver_passes_the_rules_and_the_notary_may_release() {
    let (mut w, a, b) = issued();
    let notary = Person::new(8);
    w.ok(&a.key, hold(&w, "H-1", 100, &notary, None, 7));
    w.rejects(&notary.key, execute("H-1", None), RejectCode::InvalidField);
    // A receiver bound to nobody is refused, and the hold stays as it was.
    let dave = Person::new(4);
    w.rejects(
        &notary.key,
        execute("H-1", Some(&dave)),
        RejectCode::WalletNotRegistered,
    );
    assert_eq!(w.ledger.hold(&id("H-1")).unwrap().state, HoldState::Open);
    w.ok(&notary.key, release("H-1"));
    assert_eq!(
        w.ledger.hold(&id("H-1")).unwrap().state,
        HoldState::Released
    );
    // Released units move freely.
    w.ok(&a.key, w.transfer("T", &b, 600));
}

#[test]
fn holds_expiry_releases_the_units() {
    let (mut w, a, b) = issued();
    let notary = Person::new(8);
    w.ok(&a.key, hold(&w, "H-1", 600, &notary, Some(&b), 1));
    w.rejects(&a.key, w.transfer("T", &b, 1), RejectCode::FundsHeld);
    w.advance_days(1);
    // Expired: the notary can no longer execute it, and the units are free.
    w.rejects(&notary.key, execute("H-1", None), RejectCode::HoldExpired);
    w.ok(&a.key, w.transfer("T", &b, 600));
    // Spending them released the hold, which no longer counts.
    assert_eq!(
        w.ledger.hold(&id("H-1")).unwrap().state,
        HoldState::Released
    );
    // An expired hold anyone may release; here a fresh one expires and
    // bob, a stranger to it, tidies it up.
    w.ok(&b.key, hold(&w, "H-2", 10, &notary, None, 1));
    w.rejects(&a.key, release("H-2"), RejectCode::NotTheNotary);
    w.advance_days(2);
    w.ok(&a.key, release("H-2"));
}

#[test]
fn holds_the_agents_forced_move_takes_held_units_last_and_releases_the_newest() {
    let (mut w, a, b) = issued();
    let notary = Person::new(8);
    w.ok(&a.key, hold(&w, "H-1", 200, &notary, Some(&b), 7));
    w.ok(&a.key, hold(&w, "H-2", 300, &notary, Some(&b), 7));
    // 600 held by alice, 500 on hold: the agent takes 200, leaving 400,
    // which no longer covers both holds: the newest goes.
    w.ok(&w.issuer.clone(), forced(vec![(&a, &b, 200)]));
    assert_eq!(
        w.ledger.hold(&id("H-2")).unwrap().state,
        HoldState::Released
    );
    assert_eq!(w.ledger.hold(&id("H-1")).unwrap().state, HoldState::Open);
    w.ok(&notary.key, execute("H-1", None));
    assert_eq!(w.balance("T", &a.wallet()), 200);
}
