//! Runs the consensus engine of each epoch this node votes in (C-2).
//!
//! The application announces every epoch the chain reaches, with the
//! epoch's committee (elected by the ledger at the end of the previous one)
//! and the block the epoch builds on. The orchestrator stops the previous
//! epoch's engine and, if this node is on the new committee, starts a
//! simplex engine for the epoch with that committee, its own journal, and
//! its own sub-channels of the three consensus channels, so no vote of one
//! epoch reaches another's engine. A node off the committee runs no engine:
//! its application follows the chain by fetching finalized blocks and their
//! certificates from the committee.

use crate::application::{participants, EpochStart};
use crate::witness::Witness;
use crate::{engine_config, ConsensusKey, Mailbox, Reporter, Scheme};
use commonware_consensus::simplex;
use commonware_cryptography::{ed25519, Signer as _};
use commonware_p2p::utils::mux::{MuxHandle, Muxer, SubReceiver, SubSender};
use commonware_p2p::{Blocker, Receiver, Sender};
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_utils::channel::{mpsc, oneshot, watch};
use rand_core_010::CryptoRng;

/// The engine's channels, each shared by the engines of every epoch.
#[allow(missing_debug_implementations)]
pub struct EngineChannels<S, R> {
    /// Votes.
    pub votes: (S, R),
    /// Certificates.
    pub certificates: (S, R),
    /// Requests for missing certificates.
    pub resolver: (S, R),
}

/// What the orchestrator needs to run engines for one node.
#[allow(missing_debug_implementations)]
pub struct Orchestrator<B, S, R> {
    /// The node's consensus key.
    pub signer: ed25519::PrivateKey,
    /// The chain's consensus namespace.
    pub namespace: Vec<u8>,
    /// Where engines report misbehaving peers.
    pub blocker: B,
    /// The application, as the engine's automaton and relay.
    pub mailbox: Mailbox,
    /// The application's reporter.
    pub reporter: Reporter,
    /// The newest epoch the application announced.
    pub epochs: watch::Receiver<Option<EpochStart>>,
    /// The consensus channels.
    pub channels: EngineChannels<S, R>,
    /// The prefix of each epoch's journal partition in the runtime's storage.
    pub journal: String,
}

impl<B, S, R> Orchestrator<B, S, R>
where
    B: Blocker<PublicKey = ConsensusKey> + Clone,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
{
    /// Runs until the application stops announcing epochs.
    pub async fn run<E>(self, context: E)
    where
        E: Clock + CryptoRng + Spawner + Storage + Metrics,
    {
        let Orchestrator {
            signer,
            namespace,
            blocker,
            mailbox,
            reporter,
            mut epochs,
            channels,
            journal,
        } = self;
        let (votes, mut votes_mux) =
            Muxer::new(context.child("votes"), channels.votes.0, channels.votes.1);
        votes.start();
        let (certificates, mut certificates_mux) = Muxer::new(
            context.child("certificates"),
            channels.certificates.0,
            channels.certificates.1,
        );
        certificates.start();
        let (resolver, mut resolver_mux) = Muxer::new(
            context.child("resolver"),
            channels.resolver.0,
            channels.resolver.1,
        );
        resolver.start();
        let me = signer.public_key();
        let mut engine: Option<Handle<()>> = None;
        // The next epoch's sub-channels, opened while this epoch runs: the
        // validators that finish the epoch first start the next engine and
        // vote at once, and their first messages would be dropped by a node
        // still finishing the epoch (costing the new epoch's first view a
        // timeout) if nothing were there to hold them.
        let mut next = None;
        while epochs.changed().await.is_ok() {
            let Some(start) = epochs.borrow_and_update().clone() else {
                continue;
            };
            if let Some(previous) = engine.take() {
                previous.abort();
            }
            let epoch = start.epoch;
            let early = match next.take() {
                Some((e, channels)) if e == epoch => Some(channels),
                // Dropping them closes them.
                _ => None,
            };
            let mut muxes = [&mut votes_mux, &mut certificates_mux, &mut resolver_mux];
            let channels = match early {
                Some(channels) => Some(channels),
                None => open_epoch(&mut muxes, epoch).await,
            };
            let Some([v, c, r]) = channels else {
                // The muxers stopped: the node is shutting down.
                return;
            };
            let Some(following) = open_epoch(&mut muxes, epoch + 1).await else {
                return;
            };
            next = Some((epoch + 1, following));
            let participants = participants(&start.committee);
            if participants.position(&me).is_none() {
                tracing::info!(epoch, "not on this epoch's committee: following");
                continue;
            }
            let scheme = Scheme::signer(&namespace, participants, signer.clone())
                .expect("this node is on the committee");
            tracing::info!(epoch, "starting this epoch's consensus engine");
            let v = (
                v.0,
                Witness::new(
                    v.1,
                    epoch,
                    scheme.clone(),
                    reporter.clone(),
                    context.child("witness").with_attribute("epoch", epoch),
                ),
            );
            let config = engine_config(
                scheme,
                blocker.clone(),
                mailbox.clone(),
                reporter.clone(),
                format!("{journal}-{epoch}"),
                start.floor,
                epoch,
            );
            let started = simplex::Engine::new(
                context.child("engine").with_attribute("epoch", epoch),
                config,
            )
            .start(v, c, r);
            engine = Some(started);
        }
    }
}

/// One epoch's sub-channel of each of the three consensus channels, or
/// `None` if the muxers have stopped (the node is shutting down).
async fn open_epoch<S: Sender>(
    muxes: &mut [&mut MuxHandle<S>; 3],
    epoch: u64,
) -> Option<[(SubSender<S>, SubReceiver<S::PublicKey>); 3]> {
    let [votes, certificates, resolver] = muxes;
    Some([
        votes.register(epoch).await.ok()?,
        certificates.register(epoch).await.ok()?,
        resolver.register(epoch).await.ok()?,
    ])
}

/// A node's consensus side, running.
#[allow(missing_debug_implementations)]
pub struct Launched {
    /// The application's mailbox, for submissions.
    pub mailbox: Mailbox,
    /// The application's task.
    pub application: Handle<()>,
    /// The orchestrator's task (and its engines').
    pub engines: Handle<()>,
    /// Why the chain store failed, should it: the node can only stop (a
    /// restart resumes from the last block stored).
    pub store_failed: oneshot::Receiver<String>,
}

/// Starts a node's application, from `start`, committing to `archive` and
/// reporting finalized blocks on `observer`, and the orchestrator of its
/// engines, with journals named after `journal`.
#[allow(clippy::too_many_arguments)]
pub fn launch<E, A, B, S, R>(
    context: &E,
    signer: ed25519::PrivateKey,
    namespace: &[u8],
    start: crate::Start,
    archive: A,
    blocker: B,
    blocks: (S, R),
    channels: EngineChannels<S, R>,
    observer: mpsc::Sender<crate::Finalized>,
    journal: String,
) -> Launched
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics + commonware_runtime::Supervisor,
    A: crate::Archive,
    B: Blocker<PublicKey = ConsensusKey> + Clone + Send + 'static,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
{
    let me = tranche_types::PublicKey(
        signer
            .public_key()
            .as_ref()
            .try_into()
            .expect("an ed25519 public key is 32 bytes"),
    );
    let (store_failed, failure) = oneshot::channel();
    let (application, mailbox, reporter, epochs) = crate::Application::new(
        context.child("application"),
        me,
        namespace,
        start,
        archive,
        blocks,
        observer,
        store_failed,
    );
    let application = application.start();
    let orchestrator = Orchestrator {
        signer,
        namespace: namespace.to_vec(),
        blocker,
        mailbox: mailbox.clone(),
        reporter,
        epochs,
        channels,
        journal,
    };
    let engines = context
        .child("orchestrator")
        .spawn(move |context| orchestrator.run(context));
    Launched {
        mailbox,
        application,
        engines,
        store_failed: failure,
    }
}
