//! The mempool's admission rules, and blocks built by one node verified and
//! executed by another.

use tranche_block::*;
use tranche_crypto::{os_rng, sign_transaction, Keypair};
use tranche_ledger::Ledger;
use tranche_types::*;

const CHAIN: &str = "tranche-block-test";
const NOW: Timestamp = Timestamp(1_767_225_600_000);

fn tsp() -> Keypair {
    tranche_testkit::key(1)
}

fn ledger() -> Ledger {
    ledger_of(vec![Role::Tsp], 0)
}

/// A chain of one organisation, the TSP, with these roles and this bond.
fn ledger_of(roles: Vec<Role>, bond: u128) -> Ledger {
    tranche_testkit::one_org_ledger(CHAIN, "tsp", &tsp(), roles, bond)
}

/// Verifies `block` at [`NOW`] as a node that has seen none of its
/// transactions would.
fn verify_afresh(
    block: &Block,
    tip: &Tip,
    ledger: &Ledger,
    limits: &BlockLimits,
) -> Result<(), BlockError> {
    verify(
        block,
        tip,
        ledger,
        NOW,
        limits,
        &mut Mempool::default(),
        os_rng(),
    )
}

fn register(signer: &Keypair, nonce: u64, n: u8) -> SignedTransaction {
    let person = tranche_testkit::key(n);
    tranche_testkit::register_wallet(CHAIN, signer, nonce, NOW.plus_ms(3_600_000), &person)
}

#[test]
fn the_mempool_admits_what_could_go_in_a_block_and_nothing_else() {
    let l = ledger();
    let mut m = Mempool::new(MempoolLimits {
        txs_max: 4,
        per_signer_max: 3,
        org_per_signer_max: 3,
        ..MempoolLimits::default()
    });
    let a = register(&tsp(), 1, 10);
    let hash = m.admit(a.clone(), &l, NOW).unwrap();
    assert_eq!(
        m.admit(a.clone(), &l, NOW),
        Ok(hash),
        "resubmitting is harmless"
    );
    assert_eq!(m.len(), 1);
    // Another transaction for the same signer and nonce.
    assert_eq!(
        m.admit(register(&tsp(), 1, 11), &l, NOW),
        Err(AdmitError::NonceTaken(hash))
    );
    assert!(matches!(
        m.admit(register(&tsp(), 0, 12), &l, NOW),
        Err(AdmitError::NonceUsed { .. })
    ));
    assert!(matches!(
        m.admit(register(&tsp(), 5_000, 12), &l, NOW),
        Err(AdmitError::NonceTooFar { .. })
    ));
    let mut late = register(&tsp(), 2, 13);
    late.tx.valid_until = Timestamp(NOW.0 - 1);
    assert!(matches!(
        m.admit(late, &l, NOW),
        Err(AdmitError::Expired(_))
    ));
    let mut forever = register(&tsp(), 2, 13).tx;
    forever.valid_until = Timestamp(u64::MAX);
    let forever = sign_transaction(&tsp(), forever).unwrap();
    assert!(matches!(
        m.admit(forever, &l, NOW),
        Err(AdmitError::ValidityTooLong(_))
    ));
    let mut forged = register(&tsp(), 2, 14);
    forged.signature.0[0] ^= 1;
    assert!(matches!(
        m.admit(forged, &l, NOW),
        Err(AdmitError::Invalid(_))
    ));
    let mut other_chain = register(&tsp(), 2, 15).tx;
    other_chain.chain_id = "elsewhere".parse().unwrap();
    let other_chain = sign_transaction(&tsp(), other_chain).unwrap();
    assert!(matches!(
        m.admit(other_chain, &l, NOW),
        Err(AdmitError::Invalid(_))
    ));
    m.admit(register(&tsp(), 2, 16), &l, NOW).unwrap();
    m.admit(register(&tsp(), 3, 17), &l, NOW).unwrap();
    assert_eq!(
        m.admit(register(&tsp(), 4, 18), &l, NOW),
        Err(AdmitError::Full("for this signer"))
    );
    let other = Keypair::from_seed(&[2; 32]);
    m.admit(register(&other, 1, 19), &l, NOW).unwrap();
    assert_eq!(
        m.admit(register(&other, 2, 20), &l, NOW),
        Err(AdmitError::Full("overall"))
    );
}

#[test]
fn an_organisation_may_have_more_waiting_than_a_person() {
    let l = ledger();
    let mut m = Mempool::default();
    let person = Keypair::from_seed(&[2; 32]);
    let limits = MempoolLimits::default();
    assert!(limits.org_nonce_ahead_max > limits.nonce_ahead_max);
    let far = limits.nonce_ahead_max + 10;
    assert!(matches!(
        m.admit(register(&person, far, 1), &l, NOW),
        Err(AdmitError::NonceTooFar { .. })
    ));
    // The TSP's service signs for many people: it may run further ahead.
    m.admit(register(&tsp(), far, 2), &l, NOW).unwrap();
    for n in 1..=limits.per_signer_max as u64 {
        m.admit(register(&tsp(), n, 3), &l, NOW).unwrap();
    }
    assert_eq!(m.len(), limits.per_signer_max + 1);
}

#[test]
fn blocks_take_consecutive_nonces_and_share_space_between_signers() {
    let l = ledger();
    let mut m = Mempool::default();
    let b = Keypair::from_seed(&[2; 32]);
    for n in [1, 2, 4] {
        m.admit(register(&tsp(), n, n as u8), &l, NOW).unwrap();
    }
    m.admit(register(&b, 1, 50), &l, NOW).unwrap();
    let picked = m.select(&l, 10);
    let order: Vec<(u8, u64)> = picked
        .iter()
        .map(|s| (s.tx.signer.0[0], s.tx.nonce))
        .collect();
    // Nonce 4 waits for 3; the two signers alternate.
    assert_eq!(picked.len(), 3);
    assert!(order.iter().filter(|(_, n)| *n == 4).count() == 0);
    let firsts: Vec<u64> = picked
        .iter()
        .filter(|s| s.tx.signer == tsp().public_key())
        .map(|s| s.tx.nonce)
        .collect();
    assert_eq!(firsts, vec![1, 2]);
    assert_eq!(m.select(&l, 1).len(), 1);
}

/// The TSP's transaction with `nonce` carrying 1,000 allocations.
fn heavy(nonce: u64) -> SignedTransaction {
    let allocations = (0..ALLOCATIONS_MAX)
        .map(|i| {
            let mut wallet = [0u8; 20];
            wallet[..2].copy_from_slice(&(i as u16).to_be_bytes());
            Allocation {
                wallet: WalletAddress(wallet),
                amount: Units(1),
                lockup_until: None,
            }
        })
        .collect();
    let tx = Transaction {
        chain_id: CHAIN.parse().unwrap(),
        signer: tsp().public_key(),
        nonce,
        valid_until: NOW.plus_ms(3_600_000),
        payload: Payload::ExecuteIssuance(ExecuteIssuance {
            request: "R-1".parse().unwrap(),
            amount: Units(ALLOCATIONS_MAX as u128),
            allocations: BoundedVec(allocations),
        }),
    };
    sign_transaction(&tsp(), tx).unwrap()
}

#[test]
fn blocks_are_filled_by_weight_so_that_heavy_transactions_cannot_stall_the_chain() {
    let l = ledger();
    let mut m = Mempool::default();
    for n in 1..=6 {
        m.admit(heavy(n), &l, NOW).unwrap();
    }
    let b = Keypair::from_seed(&[2; 32]);
    m.admit(register(&b, 1, 50), &l, NOW).unwrap();
    // A block of 5,000 transfers' worth: four issuances of 1,000 and the
    // light one beside them, not all seven transactions.
    let picked = m.select(&l, 5_000);
    let weights: Vec<usize> = picked.iter().map(weight).collect();
    assert_eq!(
        weights
            .iter()
            .filter(|w| **w == 1 + ALLOCATIONS_MAX)
            .count(),
        4,
        "{weights:?}"
    );
    assert!(weights.contains(&1), "{weights:?}");
    assert!(weights.iter().sum::<usize>() <= 5_000);
    let nonces: Vec<u64> = picked
        .iter()
        .filter(|s| s.tx.signer == tsp().public_key())
        .map(|s| s.tx.nonce)
        .collect();
    assert_eq!(nonces, [1, 2, 3, 4]);
    // Heavier than a whole block, a transaction still goes in: alone.
    let mut alone = Mempool::default();
    alone.admit(heavy(1), &l, NOW).unwrap();
    alone.admit(heavy(2), &l, NOW).unwrap();
    assert_eq!(alone.select(&l, 500).len(), 1);
}

#[test]
fn a_block_built_by_one_node_verifies_and_executes_on_another() {
    let (mut proposer, mut follower) = (ledger(), ledger());
    let mut m = Mempool::default();
    for n in 1..=5u8 {
        m.admit(register(&tsp(), n as u64, n), &proposer, NOW)
            .unwrap();
    }
    let limits = BlockLimits::default();
    let mut tip = Tip::GENESIS;
    let block = build(&proposer, &tip, &m, tsp().public_key(), NOW, &limits);
    assert_eq!(block.txs.len(), 5);
    verify_afresh(&block, &tip, &follower, &limits).unwrap();
    let a = execute(&mut proposer, &block);
    let b = execute(&mut follower, &block);
    assert_eq!(a, b);
    assert!(a.receipts.iter().all(|r| r.outcome == Outcome::Applied));
    assert_eq!(proposer.state_root(), follower.state_root());
    m.prune(&proposer, NOW);
    assert!(m.is_empty(), "included transactions leave the mempool");
    tip = Tip::of(&block);
    // The next block builds on it, even with an empty mempool.
    let next = build(&proposer, &tip, &m, tsp().public_key(), NOW, &limits);
    assert_eq!(next.header.height, 2);
    assert!(next.header.time > block.header.time);
    verify_afresh(&next, &tip, &follower, &limits).unwrap();
}

#[test]
fn invalid_blocks_are_refused_with_the_reason() {
    let l = ledger();
    let mut m = Mempool::default();
    m.admit(register(&tsp(), 1, 1), &l, NOW).unwrap();
    m.admit(register(&tsp(), 2, 2), &l, NOW).unwrap();
    let limits = BlockLimits::default();
    let tip = Tip::GENESIS;
    let good = build(&l, &tip, &m, tsp().public_key(), NOW, &limits);
    let check = |b: &Block| verify_afresh(b, &tip, &l, &limits);

    let mut b = good.clone();
    b.header.height = 2;
    assert!(matches!(check(&b), Err(BlockError::WrongHeight { .. })));
    let mut b = good.clone();
    b.header.parent = Hash([1; 32]);
    assert!(matches!(check(&b), Err(BlockError::WrongParent { .. })));
    let mut b = good.clone();
    b.txs.swap(0, 1);
    assert_eq!(check(&b), Err(BlockError::TxRootMismatch));
    let mut b = good.clone();
    b.header.time = Timestamp(0);
    assert!(matches!(
        check(&b),
        Err(BlockError::TimeNotAfterParent { .. })
    ));
    let mut b = good.clone();
    b.header.time = NOW.plus_ms(60_000);
    assert!(matches!(check(&b), Err(BlockError::TimeTooFarAhead { .. })));
    let mut b = good.clone();
    b.header.parent_state_root = Hash([2; 32]);
    assert!(matches!(
        check(&b),
        Err(BlockError::ParentStateMismatch { .. })
    ));
    // Out-of-order nonces inside, with a matching root.
    let mut txs = good.txs.clone();
    txs.swap(0, 1);
    let b = Block::new(
        CHAIN.parse().unwrap(),
        1,
        Hash::ZERO,
        good.header.time,
        tsp().public_key(),
        l.state_root(),
        txs,
    );
    assert!(matches!(
        check(&b),
        Err(BlockError::BadTransaction { index: 0, .. })
    ));
    // A forged signature.
    let mut txs = good.txs.clone();
    txs[1].signature.0[5] ^= 1;
    let b = Block::new(
        CHAIN.parse().unwrap(),
        1,
        Hash::ZERO,
        good.header.time,
        tsp().public_key(),
        l.state_root(),
        txs,
    );
    assert!(matches!(
        check(&b),
        Err(BlockError::BadTransaction { index: 1, .. })
    ));
    let tight = BlockLimits {
        txs_max: 1,
        ..limits
    };
    assert_eq!(
        verify_afresh(&good, &tip, &l, &tight),
        Err(BlockError::TooManyTxs(2))
    );
    assert_eq!(check(&good), Ok(()));
}

#[test]
fn evidence_goes_in_once_and_is_recorded_after_the_transactions() {
    // A chain whose only organisation is a validator signing with its own key.
    let mut l = ledger_of(vec![Role::Tsp, Role::Validator], 10);
    let offence = |offender: PublicKey, view: u64| Evidence {
        offender,
        epoch: 0,
        view,
        kind: OffenceKind::ConflictingFinalize,
        proof: EvidenceProof(vec![1, 2, 3]),
    };
    let guilty = offence(tsp().public_key(), 3);
    let stranger = offence(Keypair::from_seed(&[9; 32]).public_key(), 3);
    let mut m = Mempool::new(MempoolLimits::default());
    m.admit(register(&tsp(), 1, 10), &l, NOW).unwrap();
    // The proposer keeps what the ledger can record, each offence once.
    let chosen = select_evidence(&l, &[guilty.clone(), stranger.clone(), guilty.clone()]);
    assert_eq!(chosen, vec![guilty.clone()]);
    let limits = BlockLimits::default();
    let good = build(&l, &Tip::GENESIS, &m, tsp().public_key(), NOW, &limits).with_evidence(chosen);
    verify_afresh(&good, &Tip::GENESIS, &l, &limits).unwrap();

    let mut tampered = good.clone();
    tampered.evidence[0].view = 4;
    assert_eq!(
        verify_afresh(&tampered, &Tip::GENESIS, &l, &limits),
        Err(BlockError::EvidenceRootMismatch)
    );
    for bad in [vec![stranger], vec![guilty.clone(), guilty.clone()]] {
        let b = good.clone().with_evidence(bad);
        assert!(matches!(
            verify_afresh(&b, &Tip::GENESIS, &l, &limits),
            Err(BlockError::BadEvidence { .. })
        ));
    }

    let executed = execute(&mut l, &good);
    assert_eq!(executed.receipts[0].outcome, Outcome::Applied);
    assert!(matches!(
        executed.events.last(),
        Some(tranche_ledger::LedgerEvent::Slashed {
            slashed: tranche_types::Stake(10),
            ..
        })
    ));
    // Recorded: a later block may not carry it again.
    assert!(select_evidence(&l, &[guilty]).is_empty());
    // A block's evidence survives its encoding.
    assert_eq!(
        Block::from_bytes(&tranche_types::commonware_codec::Encode::encode(&good)).unwrap(),
        good
    );
}

#[test]
fn a_batch_is_admitted_as_one_by_one_would_be_and_each_signature_checked_once() {
    let l = ledger();
    let mut m = Mempool::new(MempoolLimits::default());
    let good = register(&tsp(), 1, 10);
    let honest = register(&tsp(), 2, 11);
    let mut forged = honest.clone();
    forged.signature.0[0] ^= 1;
    let used = register(&tsp(), 0, 12);
    let results = m.admit_batch(
        vec![good.clone(), forged.clone(), good.clone(), used],
        &l,
        NOW,
        os_rng(),
    );
    assert_eq!(results[0], Ok(good.hash()));
    assert!(matches!(results[1], Err(AdmitError::Invalid(_))));
    assert_eq!(results[2], Ok(good.hash()));
    assert!(matches!(results[3], Err(AdmitError::NonceUsed { .. })));
    assert_eq!(m.len(), 1);
    assert!(m.verified(&good));
    assert!(!m.verified(&forged));
    // The same batch again is harmless; the honest version gets in.
    let again = m.admit_batch(vec![good.clone(), honest.clone()], &l, NOW, os_rng());
    assert_eq!(again, vec![Ok(good.hash()), Ok(honest.hash())]);
    assert!(m.verified(&honest));

    let limits = BlockLimits::default();
    let block = build(&l, &Tip::GENESIS, &m, tsp().public_key(), NOW, &limits);
    assert_eq!(block.txs, vec![good.clone(), honest.clone()]);
    // Checked on admission, or now by a node that never saw them.
    verify(&block, &Tip::GENESIS, &l, NOW, &limits, &mut m, os_rng()).unwrap();
    let mut stranger = Mempool::default();
    verify(
        &block,
        &Tip::GENESIS,
        &l,
        NOW,
        &limits,
        &mut stranger,
        os_rng(),
    )
    .unwrap();
    // A transaction id commits to no signature: a block carrying a held
    // transaction with another signature is checked, and refused, by all.
    let mut tampered = block.clone();
    tampered.txs[1] = forged;
    assert_eq!(tampered.hash(), block.hash());
    for mempool in [&mut m, &mut stranger] {
        assert_eq!(
            verify(
                &tampered,
                &Tip::GENESIS,
                &l,
                NOW,
                &limits,
                mempool,
                os_rng()
            ),
            Err(BlockError::BadTransaction {
                index: 1,
                reason: "its signature does not verify".into()
            })
        );
    }
    // A block certified final is taken without its signatures (a quorum
    // checked them), but every other rule still holds.
    verify_certified(&tampered, &Tip::GENESIS, &l, &limits).unwrap();
    let mut gap = block.clone();
    gap.txs.remove(0);
    gap.header.tx_root = tranche_types::tx_root(&gap.txs);
    assert!(matches!(
        verify_certified(&gap, &Tip::GENESIS, &l, &limits),
        Err(BlockError::BadTransaction { index: 0, .. })
    ));
}
