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

use crate::archive::{ms_between, since, Final, Stored, UNSTORED_BLOCKS_MAX};
use crate::{genesis_digest, ConsensusKey, Digest, Scheme};
use commonware_actor::mailbox;
use commonware_actor::Feedback;
use commonware_consensus::simplex::types::{Activity, Context, Finalization};
use commonware_consensus::simplex::Plan;
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay};
use commonware_macros::select_loop;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, ContextCell, Handle, Metrics, Spawner};
use commonware_utils::channel::fallible::OneshotExt as _;
use commonware_utils::channel::{mpsc, oneshot, watch};
use commonware_utils::ordered::Set;
use rand_core_010::CryptoRng;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tranche_block::{AdmitError, BlockLimits, Mempool, MempoolLimits, Tip};
use tranche_ledger::{Committee, Ledger, LedgerEvent};
use tranche_storage::Archive;
use tranche_types::{
    Block, Evidence, EvidenceProof, Hash, OffenceKind, PublicKey, Receipt, SignedTransaction,
    Timestamp,
};

mod actor;
mod evidence;
mod inbox;
mod ingress;
mod misbehaviour;
mod peers;
pub mod wire;

pub use evidence::{evidence_holds, evidence_of};
pub use inbox::{ENGINE_MESSAGES_MAX, OFFENCES_OVERFLOW_MAX};
use ingress::Submission;
pub use ingress::{Finalized, Mailbox, Message, Reporter, Start};
pub use misbehaviour::{Misbehaviour, Pairs};
use wire::*;

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

/// The most client submissions (each a transaction or a batch) waiting for
/// the application; past it a submission is refused at once as
/// `mempool_full`, so a flood of clients cannot grow the node's memory.
pub const SUBMISSIONS_QUEUED_MAX: usize = 1024;
/// The most offences kept waiting for a block to carry them.
const OFFENCES_MAX: usize = 256;
/// The most finalization certificates kept for blocks not yet applied.
const CERTIFICATES_MAX: usize = 1024;
/// How many recent finalized blocks' times a validator compares with its
/// clock, to find it behind (see `Application::behind_ms`).
const CLOCK_SAMPLES: usize = 32;
/// How long a committee member goes without finalizing anything before it
/// asks its peers for finalized blocks (it may have missed an epoch change).
const SYNC_AFTER: Duration = Duration::from_secs(2);

/// The most blocks sent in answer to one request.
pub const ANCESTORS_MAX: usize = 64;
/// How often missing blocks are asked for again, and how long a request is
/// left to be answered before it is repeated.
const RETRY: Duration = Duration::from_millis(500);
/// How often a node that does not vote asks a committee member for the
/// blocks finalized since its last: the services beside it (a custodian's,
/// an exchange's) learn of each block within this, not within [`RETRY`].
/// An asked member answers only when it has something newer; otherwise it
/// remembers the request and answers it as soon as it finalizes the next
/// block, so a follower hears of a block when it is final, not up to this
/// much later.
const FOLLOW_SYNC: Duration = Duration::from_millis(50);
/// How many times in a row a follower asks the same member before it turns
/// to the next: the member it asks holds its request between blocks, and
/// turning now and then keeps one slow or faulty member from starving it.
const FOLLOW_STICKY: usize = 20;
/// The most requests for the next finalized block a member holds.
const FOLLOWERS_MAX: usize = 64;

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
pub struct Application<E: Clock + Spawner + Metrics + CryptoRng, S, R, A> {
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
    /// The newest epoch reached, for the orchestrator: only the newest
    /// matters (a node catching up skips the epochs already over).
    epochs: watch::Sender<Option<EpochStart>>,
    /// When this node last applied a finalized block (or started).
    progress: SystemTime,
    /// Since when a finalized block's ancestor has been missing, if one is.
    stuck_since: Option<SystemTime>,
    /// Which committee member to ask for blocks next.
    sync_turn: usize,
    /// Peers that asked for the blocks after one this node had as its
    /// newest: each is sent the next finalized blocks once, as soon as they
    /// are applied here.
    followers: BTreeMap<ConsensusKey, u64>,
    mailbox: mailbox::Receiver<Message>,
    submissions: mpsc::Receiver<Submission>,
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
    /// How this validator departs from the protocol (simulations only).
    misbehaviour: Misbehaviour,
    /// How far each of the last blocks finalized here was ahead of this
    /// validator's clock, in ms, oldest first (see `behind_ms`).
    chain_ahead_ms: VecDeque<i64>,
}
