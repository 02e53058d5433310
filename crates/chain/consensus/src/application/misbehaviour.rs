//! Validators that break the protocol on purpose, or whose clock is off,
//! for simulations: the honest validators must stay safe and live beside
//! them (f < n/3). A node never sets one; `tranche-sim` does.

use super::*;
use std::sync::Mutex;

/// Pairs of blocks a two-faced leader proposed in one view: the digest its
/// engine votes for, and the other block's. Its vote sender (the
/// simulator's) signs a vote for the other to half the committee.
pub type Pairs = Arc<Mutex<HashMap<Digest, Digest>>>;

/// How a validator departs from the protocol.
#[derive(Clone, Debug, Default)]
pub enum Misbehaviour {
    /// It follows the protocol.
    #[default]
    None,
    /// Its blocks claim a wrong state root for their parent.
    BadStateRoot,
    /// Its blocks carry a transaction whose signature does not verify.
    BadSignature,
    /// Its blocks are timed an hour ahead.
    FromTheFuture,
    /// For every block it proposes it makes a second one with other
    /// contents (one transaction fewer, or a later time), sends both to
    /// everyone, and records the pair in `Pairs`.
    TwoProposals(Pairs),
    /// Its clock is this many ms ahead (negative: behind): honest, but
    /// wrong about the time.
    ClockSkew(i64),
}

impl<E, S, R, A> Application<E, S, R, A>
where
    E: Clock + Spawner + Metrics + CryptoRng,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
    A: Archive,
{
    /// This validator's clock skew, in ms.
    pub(super) fn skew_ms(&self) -> i64 {
        match self.misbehaviour {
            Misbehaviour::ClockSkew(ms) => ms,
            _ => 0,
        }
    }

    /// The block this validator proposes instead of `block`, built on
    /// `ledger`; and, for a two-faced leader, the second block.
    pub(super) fn spoil(&self, block: Block, ledger: &Ledger) -> (Block, Option<Block>) {
        let rebuilt = |b: &Block, time: Timestamp, root: Hash, txs: Vec<SignedTransaction>| {
            let h = &b.header;
            Block::new(
                h.chain_id.clone(),
                h.height,
                h.parent,
                time,
                h.proposer,
                root,
                txs,
            )
            .with_evidence(b.evidence.clone())
        };
        let h = block.header.clone();
        match &self.misbehaviour {
            Misbehaviour::None | Misbehaviour::ClockSkew(_) => (block, None),
            Misbehaviour::BadStateRoot => {
                let wrong =
                    Hash::digest(b"tranche/misbehaviour/state-root", &h.parent_state_root.0);
                (rebuilt(&block, h.time, wrong, block.txs.clone()), None)
            }
            Misbehaviour::BadSignature => {
                let forged = SignedTransaction {
                    tx: tranche_types::Transaction {
                        chain_id: h.chain_id.clone(),
                        signer: self.me,
                        nonce: ledger.next_nonce(&self.me),
                        valid_until: h.time.plus_ms(3_600_000),
                        payload: tranche_types::Payload::Transfer(tranche_types::Transfer {
                            token: "FORGED".parse().expect("a valid token id"),
                            to: self.me.address(),
                            amount: tranche_types::Units(1),
                            reference: None,
                        }),
                    },
                    signature: tranche_types::Signature([7; 64]),
                };
                let mut txs = block.txs.clone();
                txs.push(forged);
                (rebuilt(&block, h.time, h.parent_state_root, txs), None)
            }
            Misbehaviour::FromTheFuture => {
                let later = h.time.plus_ms(3_600_000);
                (
                    rebuilt(&block, later, h.parent_state_root, block.txs.clone()),
                    None,
                )
            }
            Misbehaviour::TwoProposals(_) => {
                let mut txs = block.txs.clone();
                let other = if txs.pop().is_some() {
                    rebuilt(&block, h.time, h.parent_state_root, txs)
                } else {
                    rebuilt(&block, h.time.plus_ms(1), h.parent_state_root, txs)
                };
                (block, Some(other))
            }
        }
    }

    /// Records a two-faced leader's pair of blocks.
    pub(super) fn record_pair(&self, first: Digest, second: Digest) {
        if let Misbehaviour::TwoProposals(pairs) = &self.misbehaviour {
            pairs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(first, second);
        }
    }
}
