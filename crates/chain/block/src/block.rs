//! Producing, verifying and executing blocks: what a validator does when
//! consensus asks it to propose, to vote on a proposal, and to apply a
//! finalized block.

use crate::mempool::Mempool;
use tranche_crypto::rand_core_010::CryptoRng;
use tranche_ledger::{BlockContext, Ledger, LedgerEvent};
use tranche_types::{
    Block, Evidence, Hash, Outcome, PublicKey, Receipt, SignedTransaction, Timestamp,
    BLOCK_EVIDENCE_MAX, BLOCK_TXS_MAX,
};

/// The last block a new one builds on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Its height (0 for genesis).
    pub height: u64,
    /// Its hash ([`Hash::ZERO`] for genesis).
    pub hash: Hash,
    /// Its time (0 for genesis).
    pub time: Timestamp,
}

impl Tip {
    /// The tip before the first block.
    pub const GENESIS: Tip = Tip {
        height: 0,
        hash: Hash::ZERO,
        time: Timestamp(0),
    };

    /// The tip a block makes.
    pub fn of(block: &Block) -> Tip {
        Tip {
            height: block.header.height,
            hash: block.hash(),
            time: block.header.time,
        }
    }
}

/// Limits on blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    /// Most transactions in a block.
    pub txs_max: usize,
    /// How far ahead of the verifier's clock a block's time may be, in ms.
    pub future_drift_ms_max: u64,
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits {
            txs_max: 5_000,
            future_drift_ms_max: 2_000,
        }
    }
}

/// Why a proposed block is invalid: an honest validator votes against it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// For another chain.
    #[error("the block is for chain {0}")]
    WrongChain(String),
    /// Not the next height.
    #[error("the block's height is {got}; {expected} was expected")]
    WrongHeight {
        /// Expected.
        expected: u64,
        /// Found.
        got: u64,
    },
    /// Does not build on the tip.
    #[error("the block's parent is {got}; the tip is {expected}")]
    WrongParent {
        /// Expected.
        expected: Hash,
        /// Found.
        got: Hash,
    },
    /// The header does not commit to the transactions carried.
    #[error("the header's transaction root does not match its transactions")]
    TxRootMismatch,
    /// Not after its parent.
    #[error("the block's time {got} is not after its parent's {parent}")]
    TimeNotAfterParent {
        /// The parent's time.
        parent: Timestamp,
        /// The block's time.
        got: Timestamp,
    },
    /// Too far ahead of the verifier's clock.
    #[error("the block's time {got} is ahead of this node's clock {now} by more than allowed: the proposer's clock or this node's is wrong (check NTP)")]
    TimeTooFarAhead {
        /// The block's time.
        got: Timestamp,
        /// The verifier's clock.
        now: Timestamp,
    },
    /// Too many transactions.
    #[error("the block carries {0} transactions; the limit is lower")]
    TooManyTxs(usize),
    /// The header's parent state root is not the state it builds on.
    #[error("the block claims parent state {claimed}; the parent state is {actual}")]
    ParentStateMismatch {
        /// Claimed.
        claimed: Hash,
        /// Actual.
        actual: Hash,
    },
    /// A transaction cannot be in a block at all (signature, chain, expiry, nonce).
    #[error("transaction #{index} cannot be included: {reason}")]
    BadTransaction {
        /// Its position.
        index: usize,
        /// Why.
        reason: String,
    },
    /// More evidence than a block may carry.
    #[error("the block carries {0} pieces of evidence; at most {BLOCK_EVIDENCE_MAX} are allowed")]
    TooMuchEvidence(usize),
    /// The header does not commit to the evidence carried.
    #[error("the header's evidence root does not match its evidence")]
    EvidenceRootMismatch,
    /// A piece of evidence cannot be recorded (unknown offender, already
    /// recorded, twice in the block, or a proof that does not hold).
    #[error("evidence #{index} cannot be included: {reason}")]
    BadEvidence {
        /// Its position.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// The evidence a proposer includes: of `candidates`, those the ledger can
/// still record, each offence once, at most [`BLOCK_EVIDENCE_MAX`].
pub fn select_evidence(ledger: &Ledger, candidates: &[Evidence]) -> Vec<Evidence> {
    let mut seen = std::collections::BTreeSet::new();
    candidates
        .iter()
        .filter(|e| ledger.check_offence(e).is_ok() && seen.insert(e.offence()))
        .take(BLOCK_EVIDENCE_MAX)
        .cloned()
        .collect()
}

/// Builds the next block on `tip` from the mempool, stamped with `time`
/// (moved past the parent's time if the clock lags).
pub fn build(
    ledger: &Ledger,
    tip: &Tip,
    mempool: &Mempool,
    proposer: PublicKey,
    time: Timestamp,
    limits: &BlockLimits,
) -> Block {
    let time = time.max(tip.time.plus_ms(1));
    let max = limits.txs_max.min(BLOCK_TXS_MAX);
    let txs = mempool
        .select(ledger, max)
        .into_iter()
        .filter(|stx| stx.tx.valid_until >= time)
        .collect::<Vec<_>>();
    // An expired transaction in a signer's run would leave a gap in its
    // nonces: keep each signer's run only up to its first expired one.
    let mut next: std::collections::BTreeMap<PublicKey, u64> = Default::default();
    let txs = txs
        .into_iter()
        .filter(|stx| {
            let n = next
                .entry(stx.tx.signer)
                .or_insert_with(|| ledger.next_nonce(&stx.tx.signer));
            if stx.tx.nonce == *n {
                *n += 1;
                true
            } else {
                false
            }
        })
        .collect();
    Block::new(
        ledger.chain_id().clone(),
        tip.height + 1,
        tip.hash,
        time,
        proposer,
        ledger.state_root(),
        txs,
    )
}

/// Checks a proposed block against its parent `tip` and the ledger after it,
/// as of the verifier's clock `now`. Business rejections inside are fine (they
/// get receipts); transactions that could never be in a block are not.
/// Evidence must be recordable on the parent state; that its proofs hold is
/// checked by consensus, which knows the committee's keys. Signatures are
/// checked in one batch (`rng` draws its coefficients), but for those of
/// transactions waiting in `mempool`, which were checked on admission.
pub fn verify(
    block: &Block,
    tip: &Tip,
    ledger: &Ledger,
    now: Timestamp,
    limits: &BlockLimits,
    mempool: &mut Mempool,
    rng: impl CryptoRng,
) -> Result<(), BlockError> {
    verify_certified(block, tip, ledger, limits)?;
    if block.header.time > now.plus_ms(limits.future_drift_ms_max) {
        return Err(BlockError::TimeTooFarAhead {
            got: block.header.time,
            now,
        });
    }
    check_signatures(block, ledger, mempool, rng)
}

/// Checks a block that a quorum of the committee has certified final: all
/// that [`verify`] checks but the proposer's clock, which was judged when
/// the block was proposed, and the transactions' signatures, which every
/// honest member of that quorum checked before voting (a certificate
/// needs more than a third of the committee's honest members). A node
/// that follows finalized blocks spends nothing on signatures, which are
/// most of the work; it still re-executes every block, so the state roots
/// it serves are its own.
pub fn verify_certified(
    block: &Block,
    tip: &Tip,
    ledger: &Ledger,
    limits: &BlockLimits,
) -> Result<(), BlockError> {
    let h = &block.header;
    if &h.chain_id != ledger.chain_id() {
        return Err(BlockError::WrongChain(h.chain_id.to_string()));
    }
    if h.height != tip.height + 1 {
        return Err(BlockError::WrongHeight {
            expected: tip.height + 1,
            got: h.height,
        });
    }
    if h.parent != tip.hash {
        return Err(BlockError::WrongParent {
            expected: tip.hash,
            got: h.parent,
        });
    }
    if block.txs.len() > limits.txs_max.min(BLOCK_TXS_MAX) {
        return Err(BlockError::TooManyTxs(block.txs.len()));
    }
    if !block.tx_root_matches() {
        return Err(BlockError::TxRootMismatch);
    }
    if h.time <= tip.time {
        return Err(BlockError::TimeNotAfterParent {
            parent: tip.time,
            got: h.time,
        });
    }
    let actual = ledger.state_root();
    if h.parent_state_root != actual {
        return Err(BlockError::ParentStateMismatch {
            claimed: h.parent_state_root,
            actual,
        });
    }
    let mut next: std::collections::BTreeMap<PublicKey, u64> = Default::default();
    for (index, stx) in block.txs.iter().enumerate() {
        let bad = |reason: String| BlockError::BadTransaction { index, reason };
        if &stx.tx.chain_id != ledger.chain_id() {
            return Err(bad(format!("it is for chain {}", stx.tx.chain_id)));
        }
        if stx.tx.valid_until < h.time {
            return Err(bad(format!("it expired at {}", stx.tx.valid_until)));
        }
        let n = next
            .entry(stx.tx.signer)
            .or_insert_with(|| ledger.next_nonce(&stx.tx.signer));
        if stx.tx.nonce != *n {
            return Err(bad(format!("nonce {} where {} is next", stx.tx.nonce, n)));
        }
        *n += 1;
    }
    if block.evidence.len() > BLOCK_EVIDENCE_MAX {
        return Err(BlockError::TooMuchEvidence(block.evidence.len()));
    }
    if !block.evidence_root_matches() {
        return Err(BlockError::EvidenceRootMismatch);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (index, evidence) in block.evidence.iter().enumerate() {
        let bad = |reason: String| BlockError::BadEvidence { index, reason };
        ledger
            .check_offence(evidence)
            .map_err(|r| bad(r.message.clone()))?;
        if !seen.insert(evidence.offence()) {
            return Err(bad("the block carries this offence twice".into()));
        }
    }
    Ok(())
}

/// Checks the signatures of a block's transactions, once per node: those
/// of transactions waiting in `mempool` were checked on admission; the
/// rest are checked in one batch.
fn check_signatures(
    block: &Block,
    ledger: &Ledger,
    mempool: &mut Mempool,
    rng: impl CryptoRng,
) -> Result<(), BlockError> {
    let unchecked: Vec<(usize, &SignedTransaction)> = block
        .txs
        .iter()
        .enumerate()
        .filter(|(_, stx)| !mempool.verified(stx))
        .collect();
    let chain = ledger.chain_id();
    let verifier = mempool.verifier();
    if verifier
        .verify_batch(unchecked.iter().map(|(_, stx)| *stx), chain, rng)
        .is_err()
    {
        // Find which one, for the record.
        let index = unchecked
            .iter()
            .find(|(_, stx)| verifier.verify(stx, chain).is_err())
            .map_or(0, |(i, _)| *i);
        return Err(BlockError::BadTransaction {
            index,
            reason: "its signature does not verify".into(),
        });
    }
    Ok(())
}

/// What executing a block produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// Everything the ledger recorded, in order.
    pub events: Vec<LedgerEvent>,
    /// The state root after the block.
    pub state_root: Hash,
}

/// Applies a verified block to the ledger.
pub fn execute(ledger: &mut Ledger, block: &Block) -> Executed {
    let (receipts, events) = apply_block(ledger, block);
    Executed {
        receipts,
        events,
        state_root: ledger.state_root(),
    }
}

/// Applies a verified block's transactions, evidence and end-of-block work
/// to the ledger, without computing the state root after it (see
/// [`execute`]): its receipts and what the ledger recorded.
pub fn apply_block(ledger: &mut Ledger, block: &Block) -> (Vec<Receipt>, Vec<LedgerEvent>) {
    let ctx = BlockContext {
        height: block.header.height,
        time: block.header.time,
    };
    let mut receipts = Vec::with_capacity(block.txs.len());
    let mut events = Vec::new();
    for (index, stx) in block.txs.iter().enumerate() {
        let applied = ledger.apply_verified(&ctx, stx);
        receipts.push(Receipt {
            tx_hash: stx.hash(),
            height: ctx.height,
            index: u32::try_from(index).expect("blocks hold fewer than 2^32 transactions"),
            outcome: applied.outcome.clone(),
        });
        if applied.outcome == Outcome::Applied {
            events.extend(applied.events);
        }
    }
    // Offences are recorded after the transactions, so nothing in the block
    // depends on whether its own evidence was applied first.
    for evidence in &block.evidence {
        // A verified block's evidence is all recordable; an unverified one
        // skips what is not, the same way on every node.
        if let Ok(event) = ledger.record_offence(&ctx, evidence) {
            events.push(event);
        }
    }
    // Last, so the election sees everything the epoch's last block did.
    events.extend(ledger.finish_block(&ctx));
    (receipts, events)
}
