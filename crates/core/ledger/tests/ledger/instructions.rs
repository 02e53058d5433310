//! Settlement instructions (multi-party settlement): created by anyone,
//! affirmed by each wallet that gives (in order when asked), carried out
//! atomically by the last affirmation, cancelled by a party, void after
//! their deadline; a refused leg fails the instruction with its reason.

use crate::support::*;
use tranche_ledger::*;
use tranche_types::*;

/// alice (600) and bob (400) hold `T`; carol is onboarded with nothing.
fn world() -> (World, Person, Person, Person) {
    let mut w = World::new();
    let (a, b, c) = (Person::new(1), Person::new(2), Person::new(3));
    w.onboard(&a, "KR");
    w.onboard(&b, "US");
    w.onboard(&c, "KR");
    w.issue("T", &[(&a, 600), (&b, 400)], default_rules());
    (w, a, b, c)
}

fn leg(from: &Person, to: &Person, n: u128) -> Leg {
    Leg {
        token: id("T"),
        from: from.wallet(),
        to: to.wallet(),
        amount: Units(n),
    }
}

fn create(w: &World, id_: &str, legs: Vec<Leg>, ordered: bool, days: u64) -> Payload {
    Payload::CreateInstruction(CreateInstruction {
        instruction: id(id_),
        legs: BoundedVec(legs),
        ordered,
        deadline: w.ctx.time.plus_ms(days * MS_PER_DAY),
    })
}

fn affirm(id_: &str) -> Payload {
    Payload::AffirmInstruction(AffirmInstruction {
        instruction: id(id_),
    })
}

fn cancel(id_: &str) -> Payload {
    Payload::CancelInstruction(CancelInstruction {
        instruction: id(id_),
    })
}

fn state_of(w: &World, id_: &str) -> InstructionState {
    w.ledger.instruction(&id(id_)).unwrap().state
}

#[test]
fn settlement_instructions_execute_atomically_when_the_last_giver_affirms() {
    let (mut w, a, b, c) = world();
    // A venue (carol here) creates it: alice gives 100 to bob, bob 50 to
    // carol, alice 10 to carol.
    let legs = vec![leg(&a, &b, 100), leg(&b, &c, 50), leg(&a, &c, 10)];
    w.rejects(
        &c.key,
        create(&w, "I-1", vec![], false, 1),
        RejectCode::InvalidField,
    );
    w.rejects(
        &c.key,
        create(&w, "I-1", legs.clone(), false, 0),
        RejectCode::InvalidField,
    );
    w.rejects(
        &c.key,
        create(&w, "I-1", vec![leg(&a, &b, 0)], false, 1),
        RejectCode::ZeroAmount,
    );
    w.ok(&c.key, create(&w, "I-1", legs.clone(), false, 1));
    w.rejects(
        &c.key,
        create(&w, "I-1", legs, false, 1),
        RejectCode::AlreadyExists,
    );
    // Only givers affirm, each once; nothing moves before the last.
    w.rejects(&c.key, affirm("I-1"), RejectCode::NotAParty);
    w.ok(&b.key, affirm("I-1"));
    w.rejects(&b.key, affirm("I-1"), RejectCode::AlreadyAffirmed);
    assert_eq!(w.balance("T", &c.wallet()), 0);
    assert_eq!(state_of(&w, "I-1"), InstructionState::Pending);
    w.ok(&a.key, affirm("I-1"));
    assert_eq!(state_of(&w, "I-1"), InstructionState::Executed);
    assert_eq!(
        (
            w.balance("T", &a.wallet()),
            w.balance("T", &b.wallet()),
            w.balance("T", &c.wallet())
        ),
        (490, 450, 60)
    );
    let moved = w
        .events
        .iter()
        .filter(|e| matches!(e, LedgerEvent::Transfer(t) if t.kind == TransferKind::Settlement))
        .count();
    assert_eq!(moved, 3);
    w.rejects(&a.key, affirm("I-1"), RejectCode::InstructionClosed);
    w.rejects(&a.key, cancel("I-1"), RejectCode::InstructionClosed);
    w.rejects(&a.key, affirm("I-9"), RejectCode::UnknownInstruction);
}

#[test]
fn settlement_instructions_in_a_fixed_order_of_approvers() {
    let (mut w, a, b, c) = world();
    w.ok(
        &c.key,
        create(&w, "I-1", vec![leg(&a, &b, 5), leg(&b, &c, 5)], true, 1),
    );
    w.rejects(&b.key, affirm("I-1"), RejectCode::NotYourTurn);
    w.ok(&a.key, affirm("I-1"));
    w.ok(&b.key, affirm("I-1"));
    assert_eq!(state_of(&w, "I-1"), InstructionState::Executed);
}

#[test]
fn settlement_instructions_a_refused_leg_fails_it_with_its_reason_and_moves_nothing() {
    let (mut w, a, b, c) = world();
    // Bob's leg overdraws him once alice's leg ran: he holds 400, gives 450.
    w.ok(
        &c.key,
        create(&w, "I-1", vec![leg(&a, &b, 10), leg(&b, &c, 450)], false, 1),
    );
    w.ok(&a.key, affirm("I-1"));
    // The last affirmation is applied, and fails the instruction.
    w.ok(&b.key, affirm("I-1"));
    let i = w.ledger.instruction(&id("I-1")).unwrap();
    assert_eq!(i.state, InstructionState::Failed);
    assert_eq!(
        i.failure.as_ref().map(|r| r.code),
        Some(RejectCode::InsufficientBalance)
    );
    assert_eq!(i.affirmed.len(), 2);
    assert_eq!(
        (w.balance("T", &a.wallet()), w.balance("T", &b.wallet())),
        (600, 400),
        "alice's leg was put back"
    );
    assert!(w.events.is_empty(), "nothing moved");
}

#[test]
fn settlement_instructions_a_party_cancels_and_the_deadline_voids() {
    let (mut w, a, b, c) = world();
    w.ok(&a.key, create(&w, "I-1", vec![leg(&a, &b, 5)], false, 1));
    // A stranger cannot cancel; the receiver can.
    let stranger = Person::new(7);
    w.rejects(&stranger.key, cancel("I-1"), RejectCode::NotAParty);
    w.ok(&b.key, cancel("I-1"));
    assert_eq!(state_of(&w, "I-1"), InstructionState::Cancelled);
    w.rejects(&a.key, affirm("I-1"), RejectCode::InstructionClosed);
    // Past its deadline an instruction takes no affirmation.
    w.ok(
        &c.key,
        create(&w, "I-2", vec![leg(&a, &b, 5), leg(&b, &a, 5)], false, 1),
    );
    w.ok(&a.key, affirm("I-2"));
    w.advance_days(1);
    w.rejects(&b.key, affirm("I-2"), RejectCode::InstructionExpired);
    assert_eq!(w.balance("T", &b.wallet()), 400);
}
