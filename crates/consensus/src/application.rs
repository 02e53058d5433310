//! The application side of simplex: proposes blocks built from the mempool,
//! verifies other validators' blocks against their parent's state, sends and
//! receives block contents over a p2p channel, and applies finalized blocks.
//!
//! Every block a validator has proposed or verified is kept with the ledger
//! state after it, so a proposal can build on a notarized but not yet
//! finalized parent. Finalization walks back to the last finalized block and
//! commits the chain in order.

use crate::{genesis_digest, ConsensusKey, Digest, Scheme};
use commonware_actor::Feedback;
use commonware_consensus::simplex::types::{Activity, Context};
use commonware_consensus::simplex::Plan;
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay};
use commonware_macros::select_loop;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{spawn_cell, Clock, ContextCell, Handle, Spawner};
use commonware_utils::channel::fallible::{FallibleExt as _, OneshotExt as _};
use commonware_utils::channel::{mpsc, oneshot};
use std::collections::HashMap;
use std::time::UNIX_EPOCH;
use tranche_ledger::Ledger;
use tranche_node::{AdmitError, BlockLimits, Mempool, MempoolLimits, Tip};
use tranche_types::{Block, Hash, PublicKey, Receipt, SignedTransaction, Timestamp};

/// What the engine, the reporter and clients ask of the application.
#[derive(Debug)]
pub enum Message {
    /// Build a block for this context.
    Propose {
        /// The round and parent.
        context: Context<Digest, ConsensusKey>,
        /// Where the block's digest goes.
        response: oneshot::Sender<Digest>,
    },
    /// Judge another validator's block.
    Verify {
        /// The round and parent.
        context: Context<Digest, ConsensusKey>,
        /// The block's digest.
        payload: Digest,
        /// The verdict.
        response: oneshot::Sender<bool>,
    },
    /// Send our proposed block's contents to the other validators.
    Broadcast {
        /// The block's digest.
        payload: Digest,
    },
    /// A block was finalized.
    Finalized {
        /// Its digest.
        payload: Digest,
    },
    /// A client submits a transaction.
    Submit {
        /// The transaction.
        tx: SignedTransaction,
        /// Its hash, or why it was refused.
        response: oneshot::Sender<Result<Hash, AdmitError>>,
    },
}

/// The handle the engine and clients use.
#[derive(Clone, Debug)]
pub struct Mailbox {
    sender: mpsc::UnboundedSender<Message>,
}

impl Mailbox {
    /// Submits a transaction to this validator's mempool.
    pub async fn submit(&self, tx: SignedTransaction) -> Result<Hash, AdmitError> {
        let (response, receiver) = oneshot::channel();
        self.sender.send_lossy(Message::Submit { tx, response });
        receiver
            .await
            .unwrap_or(Err(AdmitError::Full("the validator is shutting down")))
    }
}

impl Automaton for Mailbox {
    type Digest = Digest;
    type Context = Context<Digest, ConsensusKey>;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        self.sender
            .send_lossy(Message::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        self.sender.send_lossy(Message::Verify {
            context,
            payload,
            response,
        });
        receiver
    }
}

// Finalization follows notarization directly: a verified block is final
// enough to vote on.
impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = ConsensusKey;
    type Plan = Plan<ConsensusKey>;

    fn broadcast(&mut self, payload: Digest, _plan: Self::Plan) -> Feedback {
        if self.sender.send_lossy(Message::Broadcast { payload }) {
            Feedback::Ok
        } else {
            Feedback::Closed
        }
    }
}

/// Hears the engine's certificates; passes finalizations to the application.
#[derive(Clone, Debug)]
pub struct Reporter {
    sender: mpsc::UnboundedSender<Message>,
}

impl commonware_consensus::Reporter for Reporter {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Activity::Finalization(f) = activity {
            self.sender.send_lossy(Message::Finalized {
                payload: f.proposal.payload,
            });
        }
        Feedback::Ok
    }
}

/// A block this validator finalized, as the application reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finalized {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// The state root after it.
    pub state_root: Hash,
}

/// A verification waiting for a block's contents (or its ancestors').
type Waiter = (Context<Digest, ConsensusKey>, oneshot::Sender<bool>);

/// A block known to this validator, with the ledger after it.
struct Known {
    parent: Digest,
    tip: Tip,
    block: Block,
    receipts: Vec<Receipt>,
    ledger: Ledger,
}

/// The application actor.
#[allow(missing_debug_implementations)] // holds the runtime context and channels
pub struct Application<E: Clock + Spawner, S, R> {
    context: ContextCell<E>,
    me: PublicKey,
    mailbox: mpsc::UnboundedReceiver<Message>,
    blocks_out: S,
    blocks_in: R,
    limits: BlockLimits,
    /// The digest consensus starts from.
    genesis: Digest,
    /// The last finalized block (genesis at first) and the ledger after it.
    base: Digest,
    base_ledger: Ledger,
    base_tip: Tip,
    known: HashMap<Digest, Known>,
    received: HashMap<Digest, Block>,
    waiting: HashMap<Digest, Vec<Waiter>>,
    finalized_height: u64,
    mempool: Mempool,
    observer: mpsc::UnboundedSender<Finalized>,
}

fn digest_of(hash: &Hash) -> Digest {
    commonware_cryptography::sha256::Digest(hash.0)
}

impl<E, S, R> Application<E, S, R>
where
    E: Clock + Spawner,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
{
    /// A validator's application for `genesis`, signing blocks as `me`,
    /// sending and receiving block contents on `blocks`. Finalized blocks are
    /// reported on `observer`.
    #[allow(clippy::type_complexity)]
    pub fn new(
        context: E,
        me: PublicKey,
        genesis: Ledger,
        blocks: (S, R),
        observer: mpsc::UnboundedSender<Finalized>,
    ) -> (Self, Mailbox, Reporter) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let genesis_digest = genesis_digest(genesis.chain_id());
        let app = Application {
            context: ContextCell::new(context),
            me,
            mailbox: receiver,
            blocks_out: blocks.0,
            blocks_in: blocks.1,
            limits: BlockLimits::default(),
            genesis: genesis_digest,
            base: genesis_digest,
            base_ledger: genesis,
            base_tip: Tip::GENESIS,
            known: HashMap::new(),
            received: HashMap::new(),
            waiting: HashMap::new(),
            finalized_height: 0,
            mempool: Mempool::new(MempoolLimits::default()),
            observer,
        };
        (
            app,
            Mailbox {
                sender: sender.clone(),
            },
            Reporter { sender },
        )
    }

    /// Runs the actor until the runtime stops.
    pub fn start(mut self) -> Handle<()> {
        spawn_cell!(self.context, self.run())
    }

    fn now(&self) -> Timestamp {
        let ms = self
            .context
            .current()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// The tip and ledger after the block with `digest`, if known.
    fn state_after(&self, digest: &Digest) -> Option<(Tip, &Ledger)> {
        if *digest == self.base {
            return Some((self.base_tip, &self.base_ledger));
        }
        self.known.get(digest).map(|k| (k.tip, &k.ledger))
    }

    fn propose(&mut self, context: &Context<Digest, ConsensusKey>) -> Option<Digest> {
        let parent = context.parent.1;
        // The parent may have been received without this validator voting on it.
        if self.resolve(parent) != Some(true) {
            return None;
        }
        let now = self.now();
        let (tip, ledger) = self.state_after(&parent)?;
        let block = tranche_node::build(ledger, &tip, &self.mempool, self.me, now, &self.limits);
        let digest = digest_of(&block.hash());
        self.remember(digest, parent, block);
        Some(digest)
    }

    /// Executes `block` on its parent's state and keeps it with the result.
    /// The parent's state must be known.
    fn remember(&mut self, digest: Digest, parent: Digest, block: Block) {
        let (_, ledger) = self
            .state_after(&parent)
            .expect("a block is remembered only once its parent's state is known");
        let mut after = ledger.clone();
        let executed = tranche_node::execute(&mut after, &block);
        self.known.insert(
            digest,
            Known {
                parent,
                tip: Tip::of(&block),
                block,
                receipts: executed.receipts,
                ledger: after,
            },
        );
    }

    /// The digest of a block's parent: the genesis digest for the first block.
    fn parent_digest(&self, block: &Block) -> Digest {
        if block.header.height == 1 {
            self.genesis
        } else {
            digest_of(&block.header.parent)
        }
    }

    /// Verifies and executes the received block `digest`, first resolving any
    /// received ancestors it needs (a validator may have skipped voting on
    /// them). `None` while an ancestor's contents are missing.
    fn resolve(&mut self, digest: Digest) -> Option<bool> {
        if digest == self.base || self.known.contains_key(&digest) {
            return Some(true);
        }
        let block = self.received.get(&digest)?.clone();
        if digest_of(&block.hash()) != digest || block.header.height <= self.finalized_height {
            return Some(false);
        }
        let parent = self.parent_digest(&block);
        match self.resolve(parent) {
            Some(true) => {}
            other => return other,
        }
        let now = self.now();
        let (tip, ledger) = self.state_after(&parent)?;
        if tranche_node::verify(&block, &tip, ledger, now, &self.limits).is_err() {
            return Some(false);
        }
        self.remember(digest, parent, block);
        Some(true)
    }

    /// Judges the received block `digest` for `context`.
    fn judge(&mut self, context: &Context<Digest, ConsensusKey>, digest: Digest) -> Option<bool> {
        if let Some(block) = self.received.get(&digest) {
            if self.parent_digest(block) != context.parent.1 {
                return Some(false);
            }
        }
        self.resolve(digest)
    }

    /// Retries every waiting verification whose block and parent are now known.
    fn retry_waiting(&mut self) {
        let ready: Vec<Digest> = self
            .waiting
            .keys()
            .filter(|d| self.received.contains_key(d))
            .copied()
            .collect();
        for digest in ready {
            let Some(waiters) = self.waiting.remove(&digest) else {
                continue;
            };
            let mut still = Vec::new();
            for (context, response) in waiters {
                match self.judge(&context, digest) {
                    Some(verdict) => {
                        response.send_lossy(verdict);
                    }
                    None => still.push((context, response)),
                }
            }
            if !still.is_empty() {
                self.waiting.insert(digest, still);
            }
        }
    }

    fn finalize(&mut self, payload: Digest) {
        // Collect the newly final chain, newest first, back to the last final block.
        let mut chain = Vec::new();
        let mut cursor = payload;
        while cursor != self.base {
            let Some(k) = self.known.get(&cursor) else {
                // Not known here yet: a later finalization will cover it.
                return;
            };
            if k.tip.height <= self.finalized_height {
                return;
            }
            chain.push(cursor);
            cursor = k.parent;
        }
        let Some(newest) = chain.first().copied() else {
            return;
        };
        for digest in chain.iter().rev() {
            let k = &self.known[digest];
            self.observer.send_lossy(Finalized {
                block: k.block.clone(),
                receipts: k.receipts.clone(),
                state_root: k.ledger.state_root(),
            });
        }
        let k = self
            .known
            .remove(&newest)
            .expect("the newest final block is known");
        self.finalized_height = k.tip.height;
        self.base = newest;
        self.base_tip = k.tip;
        self.base_ledger = k.ledger;
        let now = self.now();
        self.mempool.prune(&self.base_ledger, now);
        // Blocks at or below the final height can never be built on again.
        let height = self.finalized_height;
        self.known.retain(|_, k| k.tip.height > height);
        self.received.retain(|_, b| b.header.height > height);
    }

    async fn run(mut self) {
        select_loop! {
            self.context,
            on_stopped => {},
            Some(message) = self.mailbox.recv() else break => {
                match message {
                    Message::Propose { context, response } => {
                        if let Some(digest) = self.propose(&context) {
                            response.send_lossy(digest);
                        }
                    }
                    Message::Verify { context, payload, response } => {
                        if self.known.contains_key(&payload) {
                            response.send_lossy(true);
                        } else {
                            match self.judge(&context, payload) {
                                Some(verdict) => {
                                    response.send_lossy(verdict);
                                }
                                None => self.waiting.entry(payload).or_default().push((context, response)),
                            }
                        }
                    }
                    Message::Broadcast { payload } => {
                        if let Some(k) = self.known.get(&payload) {
                            let bytes = tranche_types::commonware_codec::Encode::encode(&k.block).to_vec();
                            let _ = self.blocks_out.send(Recipients::All, bytes, true);
                        }
                    }
                    Message::Finalized { payload } => {
                        self.finalize(payload);
                        self.retry_waiting();
                    }
                    Message::Submit { tx, response } => {
                        let now = self.now();
                        let result = self.mempool.admit(tx, &self.base_ledger, now);
                        response.send_lossy(result);
                    }
                }
            },
            Ok((_peer, bytes)) = self.blocks_in.recv() else break => {
                if let Ok(block) = Block::from_bytes(bytes.as_ref()) {
                    if block.header.height > self.finalized_height {
                        let digest = digest_of(&block.hash());
                        self.received.insert(digest, block);
                        self.retry_waiting();
                    }
                }
            },
        }
    }
}
