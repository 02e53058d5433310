//! The ledger's invariants over thousands of random operation sequences:
//! supply equals the sum of balances, revoked units sit only in the
//! revocation wallet, nothing leaves it, issued equals allocations (checked
//! after every transaction in debug builds and again here), and the state root
//! depends only on the transactions applied.

mod support;

use proptest::prelude::*;
use support::*;
use tranche_ledger::*;
use tranche_types::*;

#[derive(Clone, Debug)]
enum Op {
    Transfer(usize, usize, u128),
    Freeze(usize, bool),
    FreezePartial(usize, u128),
    Pause(bool),
    Forced(usize, usize, u128),
    Revoke(u128, Vec<(usize, u128)>),
    Checkpoint,
    Distribute(u128),
    NextDay,
    /// A holds n for notary b, to go to the next person, for some days.
    Hold(usize, usize, u128, u64),
    /// The k-th hold's notary executes it.
    ExecuteHold(usize),
    /// The k-th hold's notary releases it.
    ReleaseHold(usize),
    /// An instruction of these legs (from, to, n), ordered or not.
    Instruct(Vec<(usize, usize, u128)>, bool),
    /// Person p affirms the k-th instruction.
    Affirm(usize, usize),
    /// Person p cancels the k-th instruction.
    CancelInstruction(usize, usize),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let who = 0usize..4;
    prop_oneof![
        8 => (who.clone(), who.clone(), 0u128..300).prop_map(|(a, b, n)| Op::Transfer(a, b, n)),
        1 => (who.clone(), any::<bool>()).prop_map(|(a, f)| Op::Freeze(a, f)),
        1 => (who.clone(), 0u128..300).prop_map(|(a, n)| Op::FreezePartial(a, n)),
        1 => any::<bool>().prop_map(Op::Pause),
        1 => (who.clone(), who.clone(), 0u128..300).prop_map(|(a, b, n)| Op::Forced(a, b, n)),
        1 => (0u128..400, proptest::collection::vec((who.clone(), 0u128..200), 0..4)).prop_map(|(n, m)| Op::Revoke(n, m)),
        1 => Just(Op::Checkpoint),
        1 => (0u128..10_000).prop_map(Op::Distribute),
        1 => Just(Op::NextDay),
        2 => (who.clone(), who.clone(), 0u128..300, 0u64..3).prop_map(|(a, b, n, d)| Op::Hold(a, b, n, d)),
        1 => (0usize..8).prop_map(Op::ExecuteHold),
        1 => (0usize..8).prop_map(Op::ReleaseHold),
        2 => (proptest::collection::vec((who.clone(), who.clone(), 0u128..300), 1..4), any::<bool>())
            .prop_map(|(legs, o)| Op::Instruct(legs, o)),
        3 => (0usize..6, who.clone()).prop_map(|(k, p)| Op::Affirm(k, p)),
        1 => (0usize..6, who.clone()).prop_map(|(k, p)| Op::CancelInstruction(k, p)),
    ]
}

/// Runs `ops` on a fresh world; returns the final state root. With
/// `root_each_step` the root is also computed after every operation (so the
/// Merkle tree is brought up to date a little at a time), and the world is
/// continued on a copy halfway (as a block is built on its parent's state).
fn run(ops: &[Op], root_each_step: bool) -> Hash {
    let mut w = World::new();
    let people: Vec<Person> = (1..=4).map(Person::new).collect();
    for p in &people {
        w.onboard(p, "KR");
    }
    let alloc: Vec<(&Person, u128)> = people.iter().map(|p| (p, 250)).collect();
    // The first two allocations are locked up for a few days: what they
    // lock never exceeds what the wallet holds, whatever moves.
    w.register_asset("A-T", usd(10_000_000));
    w.appraise("A-T", usd(10_000_000));
    let mut r = w.request("R-T", "A-T", "T", &alloc, 1_000);
    r.allocations.0[0].lockup_until = Some(date("2026-01-03"));
    r.allocations.0[1].lockup_until = Some(date("2026-01-10"));
    w.ok(&w.tsp.clone(), Payload::RequestIssuance(r.clone()));
    w.ok(&w.issuer.clone(), execution(&r));
    let (tsp, issuer) = (w.tsp.clone(), w.issuer.clone());
    let token: TokenId = id("T");
    let mut requests = 0;
    // Each hold made: its id and its notary.
    let mut holds: Vec<(RequestId, usize)> = Vec::new();
    let mut instructions = 0usize;
    for (step, op) in ops.iter().enumerate() {
        if root_each_step {
            w.ledger.state_root();
            if step == ops.len() / 2 {
                w.ledger = w.ledger.clone();
            }
        }
        match op {
            Op::Transfer(a, b, n) => {
                let p = w.transfer("T", &people[*b], *n);
                w.send(&people[*a].key, p);
            }
            Op::Freeze(a, f) => {
                w.send(
                    &issuer,
                    Payload::SetFrozen(SetFrozen {
                        token: token.clone(),
                        wallet: people[*a].wallet(),
                        frozen: *f,
                    }),
                );
            }
            Op::FreezePartial(a, n) => {
                w.send(
                    &issuer,
                    Payload::FreezePartial(FreezePartial {
                        token: token.clone(),
                        wallet: people[*a].wallet(),
                        amount: Units(*n),
                    }),
                );
            }
            Op::Pause(p) => {
                w.send(
                    &issuer,
                    Payload::SetPaused(SetPaused {
                        token: token.clone(),
                        paused: *p,
                    }),
                );
            }
            Op::Forced(a, b, n) => {
                w.send(
                    &issuer,
                    Payload::ForcedTransfer(ForcedTransfer {
                        token: token.clone(),
                        from: people[*a].wallet(),
                        to: people[*b].wallet(),
                        amount: Units(*n),
                        reason: Memo::new("test").unwrap(),
                    }),
                );
            }
            Op::Revoke(n, moves) => {
                requests += 1;
                let request: RequestId = id(&format!("V-{requests}"));
                w.send(
                    &tsp,
                    Payload::RequestRevocation(RequestRevocation {
                        request: request.clone(),
                        token: token.clone(),
                        amount: Units(*n),
                        redemption: None,
                    }),
                );
                let moves = moves
                    .iter()
                    .map(|(a, n)| Allocation {
                        wallet: people[*a].wallet(),
                        amount: Units(*n),
                        lockup_until: None,
                    })
                    .collect();
                w.send(
                    &issuer,
                    Payload::ExecuteRevocation(ExecuteRevocation {
                        request,
                        moves: BoundedVec(moves),
                    }),
                );
            }
            Op::Checkpoint => {
                w.send(
                    &tsp,
                    Payload::CreateCheckpoint(CreateCheckpoint {
                        token: token.clone(),
                    }),
                );
            }
            Op::Distribute(total) => {
                requests += 1;
                let cp = w.ledger.token(&token).unwrap().checkpoints;
                w.send(
                    &tsp,
                    Payload::DeclareDistribution(DeclareDistribution {
                        distribution: id(&format!("D-{requests}")),
                        token: token.clone(),
                        checkpoint: cp,
                        total: usd(*total),
                    }),
                );
            }
            Op::NextDay => w.advance_days(1),
            Op::Hold(a, b, n, days) => {
                let hold: RequestId = id(&format!("H-{}", holds.len()));
                holds.push((hold.clone(), *b));
                w.send(
                    &people[*a].key,
                    Payload::CreateHold(CreateHold {
                        hold,
                        token: token.clone(),
                        amount: Units(*n),
                        notary: people[*b].wallet(),
                        receiver: Some(people[(a + 1) % 4].wallet()),
                        expiry: w.ctx.time.plus_ms(days * MS_PER_DAY),
                    }),
                );
            }
            Op::Instruct(legs, ordered) => {
                let legs = legs
                    .iter()
                    .map(|(a, b, n)| Leg {
                        token: token.clone(),
                        from: people[*a].wallet(),
                        to: people[*b].wallet(),
                        amount: Units(*n),
                    })
                    .collect();
                let instruction = id(&format!("I-{instructions}"));
                instructions += 1;
                w.send(
                    &tsp,
                    Payload::CreateInstruction(CreateInstruction {
                        instruction,
                        legs: BoundedVec(legs),
                        ordered: *ordered,
                        deadline: w.ctx.time.plus_ms(2 * MS_PER_DAY),
                    }),
                );
            }
            Op::Affirm(k, p) | Op::CancelInstruction(k, p) => {
                let instruction: RequestId = id(&format!("I-{k}"));
                let payload = match op {
                    Op::Affirm(..) => Payload::AffirmInstruction(AffirmInstruction { instruction }),
                    _ => Payload::CancelInstruction(CancelInstruction { instruction }),
                };
                w.send(&people[*p].key, payload);
            }
            Op::ExecuteHold(k) | Op::ReleaseHold(k) => {
                if let Some((hold, notary)) = holds.get(*k).cloned() {
                    let payload = match op {
                        Op::ExecuteHold(_) => Payload::ExecuteHold(ExecuteHold { hold, to: None }),
                        _ => Payload::ReleaseHold(ReleaseHold { hold }),
                    };
                    w.send(&people[notary].key, payload);
                }
            }
        }
        w.ledger.check_invariants();
    }
    // Entitlements never exceed what was declared.
    let s = w.ledger.state();
    for (id, d) in &s.distributions {
        let given: u128 = s
            .entitlements
            .iter()
            .filter(|((dist, _), _)| dist == id)
            .map(|(_, e)| e.amount.0)
            .sum();
        assert_eq!(
            given + d.remainder.minor.0,
            d.total.minor.0,
            "distribution {id} accounts for every unit"
        );
    }
    // Nothing ever left the revocation wallet: it holds exactly what was revoked.
    let t = w.ledger.token(&token).unwrap();
    assert_eq!(
        w.ledger.balance(&token, &Ledger::revocation_wallet(&token)),
        t.revoked
    );
    // A snapshot restores the exact state: storage can persist it.
    let snapshot = w.ledger.snapshot();
    let restored = Ledger::restore(id(CHAIN), &snapshot).unwrap();
    assert_eq!(restored.state(), w.ledger.state());
    assert_eq!(restored.state_root(), w.ledger.state_root());
    assert_eq!(restored.snapshot(), snapshot);
    w.ledger.state_root()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn damaged_snapshots_are_refused_without_panicking(cut in 0usize..4_000, flip in any::<(usize, u8)>()) {
        let mut w = World::new();
        let a = Person::new(1);
        w.onboard(&a, "KR");
        w.tokenize("T", &[(&a, 1_000)]);
        let snapshot = w.ledger.snapshot();
        let cut = cut % snapshot.len();
        prop_assert!(Ledger::restore(id(CHAIN), &snapshot[..cut]).is_err());
        let mut bent = snapshot.clone();
        let at = flip.0 % bent.len();
        bent[at] ^= flip.1 | 1;
        // Either refused, or a different but well-formed state: never a panic.
        if let Ok(l) = Ledger::restore(id(CHAIN), &bent) {
            prop_assert_eq!(Ledger::restore(id(CHAIN), &l.snapshot()).unwrap().snapshot(), l.snapshot());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn invariants_hold_and_the_root_depends_only_on_the_transactions(
        ops in proptest::collection::vec(arb_op(), 1..40)
    ) {
        let first = run(&ops, false);
        let second = run(&ops, true);
        // However often the tree was brought up to date, and from a copy or
        // a snapshot (inside `run`), the root is the same.
        prop_assert_eq!(first, second);
    }
}
