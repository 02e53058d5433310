//! The application side of simplex: proposes blocks built from the mempool,
//! verifies other validators' blocks against their parent's state, sends and
//! receives block contents over a p2p channel, and applies finalized blocks.
//!
//! Every block a validator has proposed or verified is kept with the ledger
//! state after it, so a proposal can build on a notarized but not yet
//! finalized parent. Finalization walks back to the last finalized block and
//! hands the chain in order to the archive's writer, which reports it once
//! stored.
//!
//! Evidence of equivocation the engine reports is kept and put in this
//! validator's next proposals until the chain records it; a block's
//! evidence is checked against the committee's keys before voting for it.
//!
//! A validator that lacks a block (it was down, or a message was lost) asks
//! its peers for it by digest; a peer answers with the block and up to
//! [`ANCESTORS_MAX`] of its ancestors. Blocks fetched this way need no
//! signatures of their own: they hash-link to a digest that consensus
//! certified, and each is still verified and executed on its parent's state.

use crate::archive::{ms_between, since, Archive, Final, Stored};
use crate::{genesis_digest, ConsensusKey, Digest, Scheme};
use commonware_actor::Feedback;
use commonware_consensus::simplex::types::{Activity, Context, Finalization};
use commonware_consensus::simplex::Plan;
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay};
use commonware_macros::select_loop;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, ContextCell, Handle, Spawner};
use commonware_utils::channel::fallible::{FallibleExt as _, OneshotExt as _};
use commonware_utils::channel::{mpsc, oneshot};
use commonware_utils::ordered::Set;
use rand_core_010::CryptoRng;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tranche_ledger::{Committee, Ledger, LedgerEvent};
use tranche_node::{AdmitError, BlockLimits, Mempool, MempoolLimits, Tip};
use tranche_types::{
    Block, Evidence, EvidenceProof, Hash, OffenceKind, PublicKey, Receipt, SignedTransaction,
    Timestamp,
};

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
        /// The finalization certificate, in the engine's encoding.
        certificate: Vec<u8>,
    },
    /// The engine caught a validator signing conflicting votes.
    Offence {
        /// The engine's evidence.
        activity: Activity<Scheme, Digest>,
    },
}

/// Transactions a client submits, and where their answers go. Kept apart
/// from the engine's messages, which go first: a vote waiting behind a queue
/// of signature checks slows every block.
#[derive(Debug)]
struct Submission {
    txs: Vec<SignedTransaction>,
    response: oneshot::Sender<Vec<Result<Hash, AdmitError>>>,
}

/// The handle the engine and clients use.
#[derive(Clone, Debug)]
pub struct Mailbox {
    sender: mpsc::UnboundedSender<Message>,
    submissions: mpsc::UnboundedSender<Submission>,
}

impl Mailbox {
    /// Submits a transaction to this validator's mempool.
    pub async fn submit(&self, tx: SignedTransaction) -> Result<Hash, AdmitError> {
        self.submit_batch(vec![tx])
            .await
            .pop()
            .unwrap_or(Err(AdmitError::Full("the validator is shutting down")))
    }

    /// Submits transactions to this validator's mempool at once (their
    /// signatures are checked in one batch); one answer per transaction,
    /// in order, as if submitted one by one.
    pub async fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AdmitError>> {
        let count = txs.len();
        let (response, receiver) = oneshot::channel();
        self.submissions.send_lossy(Submission { txs, response });
        receiver.await.unwrap_or_else(|_| {
            vec![Err(AdmitError::Full("the validator is shutting down")); count]
        })
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
        match activity {
            Activity::Finalization(f) => {
                // Also the engine's own replay after a restart: the
                // application ignores what it has already finalized.
                self.sender.send_lossy(Message::Finalized {
                    payload: f.proposal.payload,
                    certificate: tranche_types::commonware_codec::Encode::encode(&f).to_vec(),
                });
            }
            Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_) => {
                self.sender.send_lossy(Message::Offence { activity });
            }
            _ => {}
        }
        Feedback::Ok
    }
}

/// A block this validator finalized, as the application reports it.
#[derive(Clone, Debug)]
pub struct Finalized {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// What the ledger recorded while applying it (transfers among them).
    pub events: Vec<LedgerEvent>,
    /// The state root after it.
    pub state_root: Hash,
    /// The ledger after it.
    pub ledger: Arc<Ledger>,
}

/// Where a validator starts: the last block it finalized and the ledger
/// after it (genesis for a new validator).
#[derive(Clone, Debug)]
pub struct Start {
    /// The last finalized block ([`Tip::GENESIS`] for none).
    pub tip: Tip,
    /// The ledger after it.
    pub ledger: Ledger,
}

impl Start {
    /// A validator with nothing finalized yet.
    pub fn genesis(ledger: Ledger) -> Start {
        Start {
            tip: Tip::GENESIS,
            ledger,
        }
    }
}

/// How long a leader with nothing to include waits after its parent's time
/// before proposing an empty block, unless a transaction arrives first.
/// Well under the engine's leader timeout, so waiting never costs a view.
pub const EMPTY_BLOCK_INTERVAL: Duration = Duration::from_millis(500);

/// How long a leader waits after its parent's time before proposing a block
/// with transactions. Without it a busy chain makes a block per round trip
/// (dozens a second, on one machine), and every block costs each node votes,
/// a disk sync and a state root whatever it carries: spacing them lets blocks
/// fill instead. At 10,000 transfers a second on two cores, 120 ms gave the
/// lowest latency of 30 to 200 ms (fewer, fuller blocks); an idle chain's
/// first transaction waits at most this long.
pub const MIN_BLOCK_INTERVAL: Duration = Duration::from_millis(120);

/// The most offences kept waiting for a block to carry them.
const OFFENCES_MAX: usize = 256;
/// The most finalization certificates kept for blocks not yet applied.
const CERTIFICATES_MAX: usize = 1024;
/// How long a committee member goes without finalizing anything before it
/// asks its peers for finalized blocks (it may have missed an epoch change).
const SYNC_AFTER: Duration = Duration::from_secs(2);

/// The most blocks sent in answer to one request.
pub const ANCESTORS_MAX: usize = 64;
/// How often missing blocks are asked for again, and how long a request is
/// left to be answered before it is repeated.
const RETRY: Duration = Duration::from_millis(500);
/// Messages on the block channel: a block's contents, or a request for one
/// (its digest, and the asker's finalized height, 8 bytes big-endian: the
/// answer is the block and its ancestors above that height, at most
/// [`ANCESTORS_MAX`]).
const TAG_BLOCK: u8 = 0;
const TAG_REQUEST: u8 = 1;
/// Transactions clients submitted to one validator, passed on to the others
/// so whichever leads next can include them: each as a 4-byte big-endian
/// length and its canonical bytes, batched to spare a message per transaction.
const TAG_TXS: u8 = 2;
/// A request for the finalized blocks after a height (8 bytes, big-endian),
/// from a node that follows the chain without voting, or has fallen behind.
const TAG_SYNC: u8 = 3;
/// The answer's last part: the certificate that finalized the last block sent.
const TAG_CERTIFICATE: u8 = 4;
/// The most transactions in one gossip message.
const GOSSIP_BATCH_MAX: usize = 512;
/// How long an admitted transaction waits for others to share its message.
const GOSSIP_DELAY: Duration = Duration::from_millis(5);

/// A verification waiting for a block's contents (or its ancestors').
type Waiter = (Context<Digest, ConsensusKey>, oneshot::Sender<bool>);

/// An epoch this node has reached: who votes in it, and the block it starts
/// from (the previous epoch's last block, or the genesis digest).
#[derive(Clone, Debug)]
pub struct EpochStart {
    /// The epoch.
    pub epoch: u64,
    /// Its committee.
    pub committee: Committee,
    /// The digest its first block builds on.
    pub floor: Digest,
}

/// The consensus keys of a committee, in the engine's canonical order. Keys
/// the engine cannot use are left out, the same way on every node (the
/// ledger admits none).
pub fn participants(committee: &Committee) -> Set<ConsensusKey> {
    let keys: std::collections::BTreeSet<ConsensusKey> = committee
        .members
        .0
        .iter()
        .filter_map(|m| consensus_key(&m.key))
        .collect();
    Set::try_from(keys.into_iter().collect::<Vec<_>>()).expect("a set of distinct keys")
}

/// The engine's form of a Tranche key, if it is a usable one.
pub fn consensus_key(key: &PublicKey) -> Option<ConsensusKey> {
    use tranche_types::commonware_codec::DecodeExt as _;
    ConsensusKey::decode(tranche_types::commonware_codec::Copying(key.0.as_slice())).ok()
}

/// A block known to this validator, with the ledger after it.
struct Known {
    parent: Digest,
    tip: Tip,
    block: Block,
    receipts: Vec<Receipt>,
    events: Vec<LedgerEvent>,
    state_root: Hash,
    ledger: Arc<Ledger>,
}

/// What resolving a block found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    /// The block and all its ancestors are valid and executed.
    Valid,
    /// The block, or an ancestor, is invalid or cannot be built on.
    Invalid,
    /// This block's contents are missing.
    Missing(Digest),
}

/// The application actor.
#[allow(missing_debug_implementations)] // holds the runtime context and channels
pub struct Application<E: Clock + Spawner + CryptoRng, S, R, A> {
    context: ContextCell<E>,
    me: PublicKey,
    /// The chain's consensus namespace, to check votes and certificates.
    namespace: Vec<u8>,
    /// Verifiers of recent epochs' committees.
    verifiers: BTreeMap<u64, Scheme>,
    /// Offences the engine caught, waiting for a block to record them.
    offences: Vec<Evidence>,
    /// Finalization certificates of blocks not yet applied.
    certificates: HashMap<Digest, Vec<u8>>,
    /// The epoch last announced to the orchestrator.
    announced: Option<u64>,
    epochs: mpsc::UnboundedSender<EpochStart>,
    /// When this node last applied a finalized block (or started).
    progress: SystemTime,
    /// Since when a finalized block's ancestor has been missing, if one is.
    stuck_since: Option<SystemTime>,
    /// Which committee member to ask for blocks next.
    sync_turn: usize,
    mailbox: mpsc::UnboundedReceiver<Message>,
    submissions: mpsc::UnboundedReceiver<Submission>,
    /// The last block this validator proposed and sent out.
    sent: Option<Digest>,
    blocks_out: S,
    blocks_in: R,
    store: Stored<A>,
    limits: BlockLimits,
    /// The digest consensus starts from.
    genesis: Digest,
    /// The last finalized block (genesis at first) and the ledger after it.
    base: Digest,
    base_ledger: Arc<Ledger>,
    base_tip: Tip,
    known: HashMap<Digest, Known>,
    received: HashMap<Digest, Block>,
    waiting: HashMap<Digest, Vec<Waiter>>,
    /// The newest digest consensus finalized that is not yet applied here.
    target: Option<Digest>,
    /// When each missing block was last asked for.
    requested: HashMap<Digest, SystemTime>,
    mempool: Mempool,
    /// A proposal held back (see [`Self::proposal_due`]), and its parent's
    /// time.
    pending: Option<(
        Context<Digest, ConsensusKey>,
        oneshot::Sender<Digest>,
        SystemTime,
    )>,
    /// Admitted transactions not yet passed on, framed, and how many.
    outbox: Vec<u8>,
    outbox_count: usize,
    /// When the outbox goes out at the latest.
    flush_at: Option<SystemTime>,
}

fn digest_of(hash: &Hash) -> Digest {
    commonware_cryptography::sha256::Digest(hash.0)
}

fn block_message(block: &Block) -> Vec<u8> {
    let mut bytes = vec![TAG_BLOCK];
    bytes.extend_from_slice(&tranche_types::commonware_codec::Encode::encode(block));
    bytes
}

/// The evidence for the engine's report of an offence, checked.
pub fn evidence_of(activity: &Activity<Scheme, Digest>, scheme: &Scheme) -> Option<Evidence> {
    use commonware_consensus::simplex::types::Attributable as _;
    use commonware_consensus::{Epochable as _, Viewable as _};
    use commonware_cryptography::certificate::Scheme as _;
    let (kind, signer, epoch, view) = match activity {
        Activity::ConflictingNotarize(c) => (
            OffenceKind::ConflictingNotarize,
            c.signer(),
            c.epoch(),
            c.view(),
        ),
        Activity::ConflictingFinalize(c) => (
            OffenceKind::ConflictingFinalize,
            c.signer(),
            c.epoch(),
            c.view(),
        ),
        Activity::NullifyFinalize(c) => (
            OffenceKind::NullifyFinalize,
            c.signer(),
            c.epoch(),
            c.view(),
        ),
        _ => return None,
    };
    let key = scheme.participants().get(usize::from(signer))?;
    let offender = PublicKey(key.as_ref().try_into().ok()?);
    Some(Evidence {
        offender,
        epoch: epoch.get(),
        view: view.get(),
        kind,
        proof: EvidenceProof(tranche_types::commonware_codec::Encode::encode(activity).to_vec()),
    })
}

/// Whether `evidence`'s proof holds: it decodes to the engine's evidence of
/// the offence it claims, signed by the offender's key in `scheme`'s committee.
pub fn evidence_holds(evidence: &Evidence, scheme: &Scheme, rng: &mut impl CryptoRng) -> bool {
    use commonware_cryptography::certificate::Verifier as _;
    use tranche_types::commonware_codec::Decode as _;
    let Ok(activity) = Activity::<Scheme, Digest>::decode_cfg(
        tranche_types::commonware_codec::Copying(evidence.proof.0.as_slice()),
        &scheme.certificate_codec_config(),
    ) else {
        return false;
    };
    evidence_of(&activity, scheme).as_ref() == Some(evidence)
        && activity.verify(rng, scheme, &commonware_parallel::Sequential)
}

impl<E, S, R, A> Application<E, S, R, A>
where
    E: Clock + Spawner + CryptoRng,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
    A: Archive,
{
    /// A node's application, starting from `start` (genesis, or what it
    /// finalized before a restart), signing blocks as `me`, checking votes
    /// in the consensus `namespace`, sending and receiving blocks on
    /// `blocks`, committing finalized blocks to `archive` and then reporting
    /// them on `observer`. Each epoch it reaches is announced on the
    /// receiver returned, for the orchestrator to run that epoch's engine.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    pub fn new(
        context: E,
        me: PublicKey,
        namespace: &[u8],
        start: Start,
        archive: A,
        blocks: (S, R),
        observer: mpsc::UnboundedSender<Finalized>,
    ) -> (Self, Mailbox, Reporter, mpsc::UnboundedReceiver<EpochStart>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (submissions, submitted) = mpsc::unbounded_channel();
        let (epochs, epochs_out) = mpsc::unbounded_channel();
        let progress = context.current();
        let genesis = genesis_digest(start.ledger.chain_id());
        let base = if start.tip.height == 0 {
            genesis
        } else {
            digest_of(&start.tip.hash)
        };
        let store = Stored::start(context.child("writer"), archive, observer);
        let app = Application {
            context: ContextCell::new(context),
            me,
            namespace: namespace.to_vec(),
            verifiers: BTreeMap::new(),
            offences: Vec::new(),
            certificates: HashMap::new(),
            announced: None,
            epochs,
            progress,
            stuck_since: None,
            sync_turn: 0,
            mailbox: receiver,
            submissions: submitted,
            sent: None,
            blocks_out: blocks.0,
            blocks_in: blocks.1,
            store,
            limits: BlockLimits::default(),
            genesis,
            base,
            base_ledger: Arc::new(start.ledger),
            base_tip: start.tip,
            known: HashMap::new(),
            received: HashMap::new(),
            waiting: HashMap::new(),
            target: None,
            requested: HashMap::new(),
            mempool: Mempool::new(MempoolLimits::default()),
            pending: None,
            outbox: Vec::new(),
            outbox_count: 0,
            flush_at: None,
        };
        (
            app,
            Mailbox {
                sender: sender.clone(),
                submissions,
            },
            Reporter { sender },
            epochs_out,
        )
    }

    /// A verifier of `committee`'s votes and certificates.
    fn verifier(&mut self, committee: &Committee) -> Scheme {
        if let Some(s) = self.verifiers.get(&committee.epoch) {
            return s.clone();
        }
        let scheme = Scheme::verifier(&self.namespace, participants(committee));
        // An epoch's evidence and certificates are checked during it and
        // the next; older verifiers are not needed.
        while self.verifiers.len() >= 4 {
            self.verifiers.pop_first();
        }
        self.verifiers.insert(committee.epoch, scheme.clone());
        scheme
    }

    /// Whether this node votes in the epoch of the next block.
    fn member(&self) -> bool {
        self.base_ledger
            .committee()
            .members
            .0
            .iter()
            .any(|m| m.key == self.me)
    }

    /// Tells the orchestrator when the next block's epoch is a new one.
    fn announce_epoch(&mut self) {
        if self.announced == Some(self.base_ledger.committee().epoch) {
            return;
        }
        let committee = self.base_ledger.committee().clone();
        let first =
            self.base_ledger.epoch_end(committee.epoch) - self.base_ledger.params().epoch_blocks;
        let floor = if first == 0 {
            self.genesis
        } else if first == self.base_tip.height {
            self.base
        } else {
            let block = self
                .store
                .block(first)
                .expect("the blocks before the last finalized one are stored");
            digest_of(&block.hash())
        };
        self.announced = Some(committee.epoch);
        self.epochs.send_lossy(EpochStart {
            epoch: committee.epoch,
            committee,
            floor,
        });
    }

    /// Runs the actor until the runtime stops.
    pub fn start(mut self) -> Handle<()> {
        // On a thread of its own where the runtime has threads: it computes
        // (signature checks, execution) between awaits, and flooded with
        // transactions it would hold a runtime worker for long stretches,
        // starving the engine's actors queued on that worker (a proposal
        // once waited 0.9 s to be voted on, and the view timed out).
        let context = self.context.take().dedicated();
        context.spawn(move |context| {
            self.context.restore(context);
            self.run()
        })
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
    fn state_after(&self, digest: &Digest) -> Option<(Tip, &Arc<Ledger>)> {
        if *digest == self.base {
            return Some((self.base_tip, &self.base_ledger));
        }
        self.known.get(digest).map(|k| (k.tip, &k.ledger))
    }

    /// Answers a request to propose now, or holds it back (see
    /// [`EMPTY_BLOCK_INTERVAL`]) while there is nothing to include.
    fn on_propose(
        &mut self,
        context: Context<Digest, ConsensusKey>,
        response: oneshot::Sender<Digest>,
    ) {
        let parent = context.parent.1;
        // The parent may have been received without this validator voting on it.
        match self.resolve(parent) {
            Resolved::Valid => {}
            Resolved::Missing(d) => {
                self.request(d);
                return;
            }
            Resolved::Invalid => return,
        }
        let Some((tip, ledger)) = self.state_after(&parent) else {
            return;
        };
        let epoch = context.round.epoch().get();
        if tip.height >= ledger.epoch_end(epoch) {
            // The epoch's last block is made: propose it again until it is
            // finalized, which ends the epoch.
            response.send_lossy(parent);
            return;
        }
        if ledger.epoch_of(tip.height + 1) != epoch {
            return;
        }
        let parent_time = UNIX_EPOCH + Duration::from_millis(tip.time.0);
        if self.context.current() < self.proposal_due(parent_time) {
            self.pending = Some((context, response, parent_time));
            return;
        }
        if let Some(digest) = self.propose(&context) {
            response.send_lossy(digest);
        }
    }

    /// When a block on a parent made at `parent_time` is due: after
    /// [`MIN_BLOCK_INTERVAL`] if there is something to include, else after
    /// [`EMPTY_BLOCK_INTERVAL`].
    fn proposal_due(&self, parent_time: SystemTime) -> SystemTime {
        if self.mempool.is_empty() {
            parent_time + EMPTY_BLOCK_INTERVAL
        } else {
            parent_time + MIN_BLOCK_INTERVAL
        }
    }

    /// Proposes the held-back block once it is due (sooner if something to
    /// include has arrived).
    fn propose_pending(&mut self) {
        let ready = match &self.pending {
            Some((_, response, parent_time)) => {
                response.is_closed() || self.context.current() >= self.proposal_due(*parent_time)
            }
            None => false,
        };
        if !ready {
            return;
        }
        let Some((context, response, _)) = self.pending.take() else {
            return;
        };
        if response.is_closed() {
            return;
        }
        if let Some(digest) = self.propose(&context) {
            response.send_lossy(digest);
        }
    }

    /// Builds, executes and keeps a block on the (resolved) parent.
    fn propose(&mut self, context: &Context<Digest, ConsensusKey>) -> Option<Digest> {
        let parent = context.parent.1;
        let now = self.now();
        let (tip, ledger) = self.state_after(&parent)?;
        let started = self.context.current();
        let block = tranche_node::build(ledger, &tip, &self.mempool, self.me, now, &self.limits)
            .with_evidence(tranche_node::select_evidence(ledger, &self.offences));
        let digest = digest_of(&block.hash());
        let (height, txs) = (block.header.height, block.txs.len());
        // Sent now rather than when the engine asks: the others can start
        // checking it while this validator's vote is on its way.
        let _ = self
            .blocks_out
            .send(Recipients::All, block_message(&block), true);
        self.sent = Some(digest);
        self.remember(digest, parent, block);
        tracing::debug!(
            height,
            txs,
            ms = ms_between(started, self.context.current()),
            "proposed"
        );
        Some(digest)
    }

    /// Executes `block` on its parent's state and keeps it with the result.
    /// The parent's state must be known.
    fn remember(&mut self, digest: Digest, parent: Digest, block: Block) {
        let (_, ledger) = self
            .state_after(&parent)
            .expect("a block is remembered only once its parent's state is known");
        let mut after = Ledger::clone(ledger);
        let executed = tranche_node::execute(&mut after, &block);
        self.known.insert(
            digest,
            Known {
                parent,
                tip: Tip::of(&block),
                block,
                receipts: executed.receipts,
                events: executed.events,
                state_root: executed.state_root,
                ledger: Arc::new(after),
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

    /// Verifies and executes the received block `digest` and any received
    /// ancestors it needs (a validator may have skipped voting on them, or
    /// fetched them after being down). Iterative: a validator catching up
    /// may resolve thousands of blocks at once.
    fn resolve(&mut self, digest: Digest) -> Resolved {
        self.resolve_certified(digest, false)
    }

    /// [`Self::resolve`]; if `certified`, `digest` is final by a
    /// certificate this node checked, so its blocks' transaction signatures
    /// need no checking here (see [`tranche_node::verify_certified`]).
    fn resolve_certified(&mut self, digest: Digest, certified: bool) -> Resolved {
        let mut path = Vec::new();
        let mut cursor = digest;
        while cursor != self.base && !self.known.contains_key(&cursor) {
            let Some(block) = self.received.get(&cursor) else {
                return Resolved::Missing(cursor);
            };
            if block.header.height <= self.base_tip.height {
                // On a branch that finalization has already excluded.
                return Resolved::Invalid;
            }
            path.push(cursor);
            cursor = self.parent_digest(block);
        }
        let now = self.now();
        for digest in path.into_iter().rev() {
            let Some(block) = self.received.get(&digest).cloned() else {
                return Resolved::Invalid;
            };
            let parent = self.parent_digest(&block);
            let Some((tip, ledger)) = self
                .state_after(&parent)
                .map(|(tip, ledger)| (tip, Arc::clone(ledger)))
            else {
                return Resolved::Invalid;
            };
            let verdict = if certified {
                tranche_node::verify_certified(&block, &tip, &ledger, &self.limits)
            } else {
                tranche_node::verify(
                    &block,
                    &tip,
                    &ledger,
                    now,
                    &self.limits,
                    &mut self.mempool,
                    self.context.as_mut(),
                )
            };
            // Evidence is checked against the committee of its epoch (the
            // block's or the one before; verification saw to that).
            let committees: Vec<Option<Committee>> = block
                .evidence
                .iter()
                .map(|e| ledger.committee_of(e.epoch).cloned())
                .collect();
            let evidence_ok = block.evidence.iter().zip(committees).all(|(e, c)| {
                c.is_some_and(|c| {
                    let scheme = self.verifier(&c);
                    evidence_holds(e, &scheme, self.context.as_mut())
                })
            });
            if verdict.is_err() || !evidence_ok {
                // Never worth looking at again.
                self.received.remove(&digest);
                return Resolved::Invalid;
            }
            self.remember(digest, parent, block);
        }
        Resolved::Valid
    }

    /// Judges the block `digest` for `context`: it builds on the parent
    /// consensus names, belongs to the context's epoch, and is valid. The
    /// epoch's last block proposed again (see [`Self::on_propose`]) is
    /// valid too.
    fn judge(&mut self, context: &Context<Digest, ConsensusKey>, digest: Digest) -> Resolved {
        let epoch = context.round.epoch().get();
        let reproposal = digest == context.parent.1;
        if !reproposal {
            let parent = match (self.received.get(&digest), self.known.get(&digest)) {
                (_, Some(k)) => Some(k.parent),
                (Some(block), None) => Some(self.parent_digest(block)),
                (None, None) => None,
            };
            if parent.is_some_and(|p| p != context.parent.1) {
                return Resolved::Invalid;
            }
        }
        let resolved = self.resolve(digest);
        if resolved != Resolved::Valid {
            return resolved;
        }
        let Some((tip, ledger)) = self.state_after(&digest) else {
            return Resolved::Invalid;
        };
        let fits = if reproposal {
            tip.height == ledger.epoch_end(epoch)
        } else {
            ledger.epoch_of(tip.height) == epoch
        };
        if fits {
            Resolved::Valid
        } else {
            Resolved::Invalid
        }
    }

    /// Asks the peers for the block `digest` (and its ancestors), unless it
    /// was asked for moments ago.
    fn request(&mut self, digest: Digest) {
        let now = self.context.current();
        if let Some(last) = self.requested.get(&digest) {
            if now.duration_since(*last).unwrap_or_default() < RETRY {
                return;
            }
        }
        self.requested.insert(digest, now);
        let mut bytes = vec![TAG_REQUEST];
        bytes.extend_from_slice(digest.as_ref());
        // Ancestors at or below this height are final here: not wanted.
        bytes.extend_from_slice(&self.base_tip.height.to_be_bytes());
        let _ = self.blocks_out.send(Recipients::All, bytes, false);
    }

    /// A block this validator holds, finalized or not.
    fn lookup(&self, digest: &Digest) -> Option<Block> {
        if let Some(k) = self.known.get(digest) {
            return Some(k.block.clone());
        }
        if let Some(b) = self.received.get(digest) {
            return Some(b.clone());
        }
        self.store.block_by_hash(&Hash(digest.0))
    }

    /// Answers `peer`'s request for `digest` with the block and its
    /// ancestors, newest first.
    fn answer(&mut self, peer: ConsensusKey, digest: Digest, floor: u64) {
        let mut cursor = digest;
        for _ in 0..ANCESTORS_MAX {
            let Some(block) = self.lookup(&cursor) else {
                break;
            };
            if block.header.height <= floor {
                // The asker has finalized it: a lagging node asking for
                // many blocks would otherwise get back what it holds.
                break;
            }
            let _ =
                self.blocks_out
                    .send(Recipients::One(peer.clone()), block_message(&block), false);
            if block.header.height <= 1 {
                break;
            }
            cursor = digest_of(&block.header.parent);
        }
    }

    /// Retries every waiting verification; asks for what is still missing.
    fn retry_waiting(&mut self) {
        let digests: Vec<Digest> = self.waiting.keys().copied().collect();
        for digest in digests {
            let Some(waiters) = self.waiting.remove(&digest) else {
                continue;
            };
            let mut still = Vec::new();
            for (context, response) in waiters {
                if response.is_closed() {
                    // Consensus moved on without this verdict.
                    continue;
                }
                let verdict = self.judge(&context, digest);
                if verdict == Resolved::Valid {
                    self.trace_known(&digest, "verified once received");
                }
                match verdict {
                    Resolved::Valid => {
                        response.send_lossy(true);
                    }
                    Resolved::Invalid => {
                        response.send_lossy(false);
                    }
                    Resolved::Missing(d) => {
                        // The block itself comes by broadcast; ask only for
                        // ancestors, or when the broadcast is late.
                        if d != digest || self.context.current() >= self.patience(digest) {
                            self.request(d);
                        }
                        still.push((context, response));
                    }
                }
            }
            if !still.is_empty() {
                self.waiting.insert(digest, still);
            }
        }
    }

    /// Logs (at debug) a step of the known block `digest`, with the time
    /// since its proposal: where a block's latency goes.
    fn trace_known(&self, digest: &Digest, step: &str) {
        if let Some(k) = self.known.get(digest) {
            tracing::debug!(
                height = k.tip.height,
                since_made_ms = since(k.tip.time, self.context.current()),
                "{step}"
            );
        }
    }

    /// When to stop waiting for a proposal's broadcast and ask for it.
    fn patience(&mut self, digest: Digest) -> SystemTime {
        let now = self.context.current();
        *self.requested.entry(digest).or_insert(now) + RETRY
    }

    /// Applies finalized blocks up to the target, fetching what is missing.
    fn finalize(&mut self) {
        let Some(target) = self.target else {
            return;
        };
        // A quorum certified the target final: it and its ancestors were
        // checked by honest members before they voted.
        match self.resolve_certified(target, true) {
            Resolved::Valid => {}
            Resolved::Missing(d) => {
                self.stuck_since.get_or_insert(self.context.current());
                self.request(d);
                return;
            }
            Resolved::Invalid => {
                // Only a block on an abandoned branch gets here: a block
                // certified final by a quorum verifies on every honest node.
                self.target = None;
                return;
            }
        }
        self.target = None;
        // The newly final chain, newest first, back to the last final block.
        let mut chain = Vec::new();
        let mut cursor = target;
        while cursor != self.base {
            let k = &self.known[&cursor];
            chain.push(cursor);
            cursor = k.parent;
        }
        let mut finals = Vec::with_capacity(chain.len());
        for digest in chain.into_iter().rev() {
            let k = self
                .known
                .remove(&digest)
                .expect("every block on the final chain is known");
            self.base = digest;
            self.base_tip = k.tip;
            self.base_ledger = Arc::clone(&k.ledger);
            finals.push(Final {
                hash: Hash(digest.0),
                certificate: self.certificates.remove(&digest),
                finalized: Finalized {
                    state_root: k.state_root,
                    block: k.block,
                    receipts: k.receipts,
                    events: k.events,
                    ledger: k.ledger,
                },
            });
        }
        self.store.store(finals);
        self.progress = self.context.current();
        self.stuck_since = None;
        self.announce_epoch();
        let now = self.now();
        self.mempool.prune(&self.base_ledger, now);
        let ledger = &self.base_ledger;
        self.offences.retain(|e| ledger.check_offence(e).is_ok());
        // Blocks at or below the final height can never be built on again.
        let height = self.base_tip.height;
        self.known.retain(|_, k| k.tip.height > height);
        self.received.retain(|_, b| b.header.height > height);
        let horizon = self.context.current() - RETRY * 4;
        self.requested.retain(|_, t| *t > horizon);
    }

    /// A finalization certificate for `payload` arrived.
    fn finalized(&mut self, payload: Digest, certificate: Vec<u8>) {
        let known_final = payload == self.base
            || payload == self.genesis
            || self.store.block_by_hash(&Hash(payload.0)).is_some();
        if known_final {
            return;
        }
        if self.certificates.len() >= CERTIFICATES_MAX {
            // Only from a peer feeding certificates of blocks that never come.
            self.certificates.clear();
        }
        self.certificates.insert(payload, certificate);
        // Finalizations come in view order; the newest covers the rest.
        self.target = Some(payload);
        self.finalize();
    }

    /// Keeps the engine's evidence of an offence for the next proposals.
    fn on_offence(&mut self, activity: &Activity<Scheme, Digest>) {
        use commonware_consensus::Epochable as _;
        let epoch = match activity {
            Activity::ConflictingNotarize(c) => c.epoch(),
            Activity::ConflictingFinalize(c) => c.epoch(),
            Activity::NullifyFinalize(c) => c.epoch(),
            _ => return,
        };
        let Some(committee) = self.base_ledger.committee_of(epoch.get()).cloned() else {
            // Of an epoch too old for any block to carry it.
            return;
        };
        let scheme = self.verifier(&committee);
        let Some(evidence) = evidence_of(activity, &scheme) else {
            return;
        };
        let known = self
            .offences
            .iter()
            .any(|e| e.offence() == evidence.offence());
        if !known
            && self.offences.len() < OFFENCES_MAX
            && self.base_ledger.check_offence(&evidence).is_ok()
        {
            self.offences.push(evidence);
        }
    }

    /// Queues an admitted transaction for the other validators.
    fn gossip(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("admitted transactions are small");
        self.outbox.extend_from_slice(&len.to_be_bytes());
        self.outbox.extend_from_slice(bytes);
        self.outbox_count += 1;
        if self.outbox_count >= GOSSIP_BATCH_MAX {
            self.flush();
        } else if self.flush_at.is_none() {
            self.flush_at = Some(self.context.current() + GOSSIP_DELAY);
        }
    }

    /// Sends the queued transactions in one message.
    fn flush(&mut self) {
        self.flush_at = None;
        if self.outbox_count == 0 {
            return;
        }
        let mut message = Vec::with_capacity(1 + self.outbox.len());
        message.push(TAG_TXS);
        message.append(&mut self.outbox);
        self.outbox_count = 0;
        let _ = self.blocks_out.send(Recipients::All, message, false);
    }

    /// Admits `txs` to the mempool, their signatures checked in one batch,
    /// and, if `pass_on`, queues the newly admitted ones for the other
    /// validators.
    fn admit(
        &mut self,
        txs: Vec<SignedTransaction>,
        pass_on: bool,
    ) -> Vec<Result<Hash, AdmitError>> {
        let now = self.now();
        let fresh: Vec<Option<Vec<u8>>> = txs
            .iter()
            .map(|tx| (pass_on && !self.mempool.verified(tx)).then(|| tx.to_bytes()))
            .collect();
        let results = if txs.len() == 1 {
            // One signature alone checks faster than a batch of one.
            txs.into_iter()
                .map(|tx| self.mempool.admit(tx, &self.base_ledger, now))
                .collect()
        } else {
            self.mempool
                .admit_batch(txs, &self.base_ledger, now, self.context.as_mut())
        };
        for (result, bytes) in results.iter().zip(fresh) {
            if let (Ok(_), Some(bytes)) = (result, bytes) {
                self.gossip(&bytes);
            }
        }
        results
    }

    /// Admits the transactions a peer passed on; never passes them on again.
    /// Stops at the first malformed frame (a faulty peer).
    fn receive_txs(&mut self, mut rest: &[u8]) {
        let mut txs = Vec::new();
        for _ in 0..GOSSIP_BATCH_MAX {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                break;
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > tranche_types::TX_BYTES_MAX || len > tail.len() {
                break;
            }
            let (bytes, tail) = tail.split_at(len);
            rest = tail;
            if let Ok(tx) = SignedTransaction::from_bytes(bytes) {
                txs.push(tx);
            }
        }
        if self.admit(txs, false).iter().any(Result::is_ok) {
            self.propose_pending();
        }
    }

    /// Asks a committee member for the finalized blocks after this node's
    /// last one, if this node does not vote in the current epoch (it
    /// follows), has finalized nothing for a while (it may have slept
    /// through an epoch change, whose engine its peers have stopped), or has
    /// been missing an ancestor of a block it knows is final.
    fn sync(&mut self) {
        let idle = self
            .context
            .current()
            .duration_since(self.progress)
            .unwrap_or_default();
        // Or it knows a later block is final but cannot get a block before
        // it: a busy node's inbound queues drop messages, and fetching by
        // height with a certificate does not depend on any one of them.
        let stuck = self.stuck_since.is_some_and(|since| {
            self.context
                .current()
                .duration_since(since)
                .unwrap_or_default()
                >= RETRY
        });
        if self.member() && idle < SYNC_AFTER && !stuck {
            return;
        }
        let others: Vec<ConsensusKey> = self
            .base_ledger
            .committee()
            .members
            .0
            .iter()
            .filter(|m| m.key != self.me)
            .filter_map(|m| consensus_key(&m.key))
            .collect();
        if others.is_empty() {
            return;
        }
        self.sync_turn = self.sync_turn.wrapping_add(1);
        let peer = others[self.sync_turn % others.len()].clone();
        let mut bytes = vec![TAG_SYNC];
        bytes.extend_from_slice(&self.base_tip.height.to_be_bytes());
        let _ = self.blocks_out.send(Recipients::One(peer), bytes, false);
    }

    /// Answers `peer`'s request for the finalized blocks after `from`: up to
    /// [`ANCESTORS_MAX`] of them, never past the end of `from`'s epoch (the
    /// asker must learn the next committee before it can check the next
    /// epoch's certificates), ending at a block with a certificate of its
    /// own, which goes last.
    fn answer_sync(&mut self, peer: ConsensusKey, from: u64) {
        let last = self.base_tip.height;
        if from >= last {
            return;
        }
        let ledger = &self.base_ledger;
        let epoch_end = ledger.epoch_end(ledger.epoch_of(from + 1));
        let end = last.min(from + ANCESTORS_MAX as u64).min(epoch_end);
        let mut found = None;
        for h in (from + 1..=end).rev() {
            if let Some(c) = self.store.certificate(h) {
                found = Some((h, c));
                break;
            }
        }
        let Some((until, certificate)) = found else {
            return;
        };
        for h in from + 1..=until {
            let Some(block) = self.store.block(h) else {
                return;
            };
            let _ =
                self.blocks_out
                    .send(Recipients::One(peer.clone()), block_message(&block), false);
        }
        let mut bytes = Vec::with_capacity(1 + certificate.len());
        bytes.push(TAG_CERTIFICATE);
        bytes.extend_from_slice(&certificate);
        let _ = self.blocks_out.send(Recipients::One(peer), bytes, false);
    }

    /// A peer's finalization certificate: checked against the committee of
    /// the next block's epoch, then treated as the engine's own.
    fn receive_certificate(&mut self, bytes: &[u8]) {
        use commonware_consensus::Epochable as _;
        use commonware_cryptography::certificate::Verifier as _;
        use tranche_types::commonware_codec::Decode as _;
        let committee = self.base_ledger.committee().clone();
        let scheme = self.verifier(&committee);
        let Ok(finalization) = Finalization::<Scheme, Digest>::decode_cfg(
            tranche_types::commonware_codec::Copying(bytes),
            &scheme.certificate_codec_config(),
        ) else {
            return;
        };
        if finalization.epoch().get() != committee.epoch
            || !finalization.verify(
                self.context.as_mut(),
                &scheme,
                &commonware_parallel::Sequential,
            )
        {
            return;
        }
        self.finalized(finalization.proposal.payload, bytes.to_vec());
        self.retry_waiting();
    }

    async fn run(mut self) {
        self.announce_epoch();
        let mut tick = self.context.current() + RETRY;
        select_loop! {
            self.context,
            on_start => {
                let mut wake = match &self.pending {
                    Some((_, _, parent_time)) => tick.min(self.proposal_due(*parent_time)),
                    None => tick,
                };
                if let Some(at) = self.flush_at {
                    wake = wake.min(at);
                }
            },
            on_stopped => {},
            Some(message) = self.mailbox.recv() else break => {
                match message {
                    Message::Propose { context, response } => {
                        self.on_propose(context, response);
                    }
                    Message::Verify { context, payload, response } => {
                        {
                            let started = self.context.current();
                            let verdict = self.judge(&context, payload);
                            tracing::debug!(
                                view = context.round.view().get(),
                                verdict = ?verdict,
                                ms = ms_between(started, self.context.current()),
                                "verify"
                            );
                            match verdict {
                                Resolved::Valid => {
                                    response.send_lossy(true);
                                }
                                Resolved::Invalid => {
                                    response.send_lossy(false);
                                }
                                Resolved::Missing(d) => {
                                    if d != payload {
                                        self.request(d);
                                    } else {
                                        self.patience(payload);
                                    }
                                    self.waiting.entry(payload).or_default().push((context, response));
                                }
                            }
                        }
                    }
                    Message::Broadcast { payload } => {
                        // A block proposed here went out already (see
                        // `propose`); the epoch's last block proposed again
                        // did not.
                        let unsent = self.sent != Some(payload);
                        if let Some(k) = self.known.get(&payload).filter(|_| unsent) {
                            let bytes = block_message(&k.block);
                            let _ = self.blocks_out.send(Recipients::All, bytes, true);
                        }
                    }
                    Message::Finalized { payload, certificate } => {
                        self.trace_known(&payload, "finalization reported");
                        self.finalized(payload, certificate);
                        self.retry_waiting();
                    }
                    Message::Offence { activity } => self.on_offence(&activity),
                }
            },
            Ok((peer, bytes)) = self.blocks_in.recv() else break => {
                let bytes = bytes.as_ref();
                match bytes.split_first() {
                    Some((&TAG_BLOCK, rest)) => {
                        if let Ok(block) = Block::from_bytes(rest) {
                            if block.header.height > self.base_tip.height {
                                tracing::debug!(
                                    height = block.header.height,
                                    txs = block.txs.len(),
                                    since_made_ms = since(block.header.time, self.context.current()),
                                    "block received"
                                );
                                let digest = digest_of(&block.hash());
                                self.received.insert(digest, block);
                                self.finalize();
                                self.retry_waiting();
                            }
                        }
                    }
                    Some((&TAG_TXS, rest)) => self.receive_txs(rest),
                    Some((&TAG_REQUEST, rest)) => {
                        if let Some((digest, floor)) = rest.split_first_chunk::<32>() {
                            if let Ok(floor) = <[u8; 8]>::try_from(floor) {
                                self.answer(
                                    peer,
                                    commonware_cryptography::sha256::Digest(*digest),
                                    u64::from_be_bytes(floor),
                                );
                            }
                        }
                    }
                    Some((&TAG_SYNC, rest)) => {
                        if let Ok(arr) = <[u8; 8]>::try_from(rest) {
                            self.answer_sync(peer, u64::from_be_bytes(arr));
                        }
                    }
                    Some((&TAG_CERTIFICATE, rest)) => self.receive_certificate(rest),
                    // Anything else is noise from a faulty peer.
                    _ => {}
                }
            },
            Some(Submission { txs, response }) = self.submissions.recv() else break => {
                let results = self.admit(txs, true);
                response.send_lossy(results);
                self.propose_pending();
            },
            _ = self.context.sleep_until(wake) => {
                if self.flush_at.is_some_and(|at| self.context.current() >= at) {
                    self.flush();
                }
                if self.context.current() >= tick {
                    tick = self.context.current() + RETRY;
                    self.finalize();
                    self.retry_waiting();
                    self.sync();
                }
                self.propose_pending();
            },
        }
    }
}
