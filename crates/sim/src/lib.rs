//! Whole networks of validators in commonware's deterministic runtime over a
//! simulated network, for tests and `tranche sim`: the same seed replays the
//! same run exactly.

use commonware_cryptography::{ed25519, Signer as _};
pub use commonware_p2p::simulated::Link;
use commonware_p2p::simulated::{self, Network};
use commonware_runtime::{deterministic, Clock as _, Quota, Runner as _, Supervisor as _};
use commonware_utils::channel::mpsc;
use commonware_utils::{NZUsize, NZU32};

/// A link between every pair of validators: `latency_ms` give or take
/// `jitter_ms`, losing `loss_percent` of messages (at most 100).
pub fn link(latency_ms: u64, jitter_ms: u64, loss_percent: u8) -> Link {
    Link {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(jitter_ms),
        success_rate: commonware_utils::Probability::new(
            100 - u64::from(loss_percent.min(100)),
            100,
        )
        .expect("a share of 100 is a probability"),
    }
}
use std::time::{Duration, UNIX_EPOCH};
use tranche_block::Tip;
use tranche_consensus::{launch, Archive as _, EngineChannels, MemoryArchive, Start};
use tranche_crypto::{sign_transaction, Keypair};
use tranche_ledger::{Genesis, GenesisOrganisation, Ledger};
use tranche_types::commonware_codec::DecodeExt as _;
use tranche_types::*;

mod byzantine;

const CHAIN: &str = "tranche-sim";
pub(crate) const NAMESPACE: &[u8] = b"tranche-sim";
/// The fewest blocks every run finalizes.
pub const BLOCKS_MIN: u64 = 8;
/// Epochs in which a Byzantine validator is ready to equivocate.
pub(crate) const BYZANTINE_EPOCHS: u64 = 64;
/// Blocks per epoch in simulated chains.
pub const EPOCH_BLOCKS: u64 = 5;
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

pub(crate) fn validator_key(i: usize) -> Keypair {
    Keypair::from_seed(&[i as u8 + 1; 32])
}

pub(crate) fn consensus_key(k: &Keypair) -> ed25519::PrivateKey {
    ed25519::PrivateKey::decode(tranche_types::commonware_codec::Copying(
        k.seed().as_slice(),
    ))
    .expect("a 32-byte seed")
}

/// The genesis of `n` validators, each bonding 100; a `spare` one bonds
/// nothing (it holds 500 stake to bond later) and so starts off the
/// committee of `n - 1`.
fn genesis(n: usize, spare: Option<usize>) -> Ledger {
    let organisations = (0..n)
        .map(|i| GenesisOrganisation {
            org: format!("validator-{i}").parse().unwrap(),
            key: validator_key(i).public_key(),
            // The first validator is also a TSP, so it has transactions to send.
            roles: if i == 0 {
                vec![Role::Validator, Role::Tsp]
            } else {
                vec![Role::Validator]
            },
            governor: true,
            stake: Stake(if spare == Some(i) { 500 } else { 100 }),
            bond: Stake(if spare == Some(i) { 0 } else { 100 }),
        })
        .collect();
    Ledger::genesis(&Genesis {
        // Short epochs, so every run crosses several of them.
        epoch_blocks: Some(EPOCH_BLOCKS),
        committee_max: spare.map(|_| u32::try_from(n - 1).expect("a small committee")),
        appraisal_tolerance_bps: None,
        chain_id: CHAIN.parse().unwrap(),
        organisations,
    })
    .unwrap()
}

fn register_wallet(nonce: u64, valid_until: Timestamp) -> SignedTransaction {
    let person = tranche_testkit::numbered_key(9, nonce);
    tranche_testkit::register_wallet(CHAIN, &validator_key(0), nonce, valid_until, &person)
}

/// A fault injected into a simulated run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// None beyond the links' latency, jitter and loss.
    None,
    /// Once the network has finalized `at` blocks, the validators split into
    /// two halves that cannot reach each other (neither has a quorum) for
    /// `heal_ms`, then the links come back.
    Partition {
        /// The height at which the partition starts.
        at: u64,
        /// How long it lasts, in ms.
        heal_ms: u64,
    },
    /// Once the network has finalized `at` blocks, the last validator is
    /// killed (its tasks stop; its archive and consensus journal survive, as
    /// disk does) and restarted `down_ms` later from what it had stored.
    Crash {
        /// The height at which it crashes.
        at: u64,
        /// How long it stays down, in ms.
        down_ms: u64,
    },
    /// The last validator is Byzantine: for every proposal it sees voted on
    /// it signs two conflicting votes, and it never proposes. The
    /// others must keep finalizing, record its equivocation on chain and
    /// slash its bond; it leaves the committee at the next epoch.
    Equivocate,
    /// The committee has one seat fewer than there are validators: the last
    /// validator starts off it, following the chain. Once `at` blocks are
    /// final it bonds more than anyone, so at the next epoch it joins the
    /// committee and the validator with the least stake (the next to last:
    /// ties go by id) leaves it and follows. Both must keep up, and the new
    /// member must propose blocks.
    Join {
        /// The height at which it bonds.
        at: u64,
    },
    /// The last validator runs the protocol but makes every block it
    /// proposes invalid in the given way: the others must refuse each one
    /// (none of its blocks is final) and keep finalizing.
    BadBlocks(BadBlock),
    /// The last validator, when it leads, proposes two valid blocks and
    /// votes for one to half the others and for the other to the rest.
    TwoFaced,
    /// The last validator says nothing for `silent_ms`, then sends every
    /// message it received back to everyone, and echoes all it receives.
    SilentThenFlood {
        /// How long it stays silent, in ms.
        silent_ms: u64,
    },
    /// Two processes share the last validator's key, each an honest
    /// validator with its own store: they sign different blocks and votes
    /// in the same views.
    Twins,
    /// The last validator's clock is `ms` off (ahead if positive): honest,
    /// it must keep the same chain. A clock ahead by more than the allowed
    /// drift gets its proposals refused. One behind finds it is from the
    /// times of the blocks it sees finalized, and then takes part as the
    /// others do: its blocks are final too.
    ClockSkew {
        /// How far off, in ms.
        ms: i64,
    },
}

/// How a Byzantine leader's blocks are invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadBlock {
    /// A wrong state root for the parent.
    StateRoot,
    /// A transaction whose signature does not verify.
    Signature,
    /// A time an hour ahead.
    FromTheFuture,
}

impl Fault {
    /// The last validator's misbehaviour, for those that run a real one.
    fn misbehaviour(self, pairs: &tranche_consensus::Pairs) -> tranche_consensus::Misbehaviour {
        use tranche_consensus::Misbehaviour as M;
        match self {
            Fault::BadBlocks(BadBlock::StateRoot) => M::BadStateRoot,
            Fault::BadBlocks(BadBlock::Signature) => M::BadSignature,
            Fault::BadBlocks(BadBlock::FromTheFuture) => M::FromTheFuture,
            Fault::TwoFaced => M::TwoProposals(pairs.clone()),
            Fault::ClockSkew { ms } => M::ClockSkew(ms),
            _ => M::None,
        }
    }

    /// Whether the last validator is Byzantine (its chain is not checked).
    pub fn byzantine(self) -> bool {
        matches!(
            self,
            Fault::Equivocate
                | Fault::BadBlocks(_)
                | Fault::TwoFaced
                | Fault::SilentThenFlood { .. }
                | Fault::Twins
        )
    }
}

/// One simulated run.
#[derive(Clone)]
pub struct Scenario {
    /// The runtime's seed: the same scenario and seed replay exactly.
    pub seed: u64,
    /// Validators in the network.
    pub validators: usize,
    /// Validators (the first ones) that never start.
    pub down: usize,
    /// Transactions every running validator must finalize.
    pub txs: u64,
    /// The link between every pair of validators.
    pub link: Link,
    /// What goes wrong.
    pub fault: Fault,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("seed", &self.seed)
            .field("validators", &self.validators)
            .field("down", &self.down)
            .field("txs", &self.txs)
            .field("latency", &self.link.latency)
            .field("jitter", &self.link.jitter)
            .field("fault", &self.fault)
            .finish()
    }
}

/// Each running validator's finalized chain as (height, block hash, state root).
pub type Chains = Vec<Vec<(u64, Hash, Hash)>>;

/// Runs `n` validators, of which the first `down` never start, with no other
/// fault; see [`run_scenario`].
pub fn run(seed: u64, n: usize, down: usize, txs: u64, link: Link) -> Chains {
    run_scenario(&Scenario {
        seed,
        validators: n,
        down,
        txs,
        link,
        fault: Fault::None,
    })
}

/// The p2p channels of one validator.
pub(crate) type Channels = (
    simulated::Control<ed25519::PublicKey, deterministic::Context>,
    (
        simulated::Sender<ed25519::PublicKey, deterministic::Context>,
        simulated::Receiver<ed25519::PublicKey>,
    ),
    (
        simulated::Sender<ed25519::PublicKey, deterministic::Context>,
        simulated::Receiver<ed25519::PublicKey>,
    ),
    (
        simulated::Sender<ed25519::PublicKey, deterministic::Context>,
        simulated::Receiver<ed25519::PublicKey>,
    ),
    (
        simulated::Sender<ed25519::PublicKey, deterministic::Context>,
        simulated::Receiver<ed25519::PublicKey>,
    ),
);

pub(crate) async fn register(
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    key: &ed25519::PublicKey,
) -> Channels {
    let control = oracle.control(key.clone());
    let votes = control.register(0, QUOTA).await.unwrap();
    let certificates = control.register(1, QUOTA).await.unwrap();
    let resolver = control.register(2, QUOTA).await.unwrap();
    let blocks = control.register(3, QUOTA).await.unwrap();
    (control, votes, certificates, resolver, blocks)
}

/// A running validator: its mailbox and the tasks to kill it.
pub(crate) struct Running {
    mailbox: tranche_consensus::Mailbox,
    tasks: Vec<commonware_runtime::Handle<()>>,
}

/// Starts validator `i` from what its archive holds (genesis if nothing).
fn start_validator(
    context: &deterministic::Context,
    i: usize,
    incarnation: usize,
    genesis: &Ledger,
    channels: Channels,
    archive: &MemoryArchive,
    misbehaviour: tranche_consensus::Misbehaviour,
) -> Running {
    let (control, votes, certificates, resolver, blocks) = channels;
    start_node(
        context,
        i,
        incarnation,
        genesis,
        control,
        blocks,
        EngineChannels {
            votes,
            certificates,
            resolver,
        },
        archive,
        misbehaviour,
        format!("validator-{i}"),
    )
}

/// Starts a validator with `i`'s key on any channels (a Byzantine one's
/// may be wrapped), from what `archive` holds (genesis if nothing).
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_node<S, R>(
    context: &deterministic::Context,
    i: usize,
    incarnation: usize,
    genesis: &Ledger,
    control: simulated::Control<ed25519::PublicKey, deterministic::Context>,
    blocks: (S, R),
    channels: EngineChannels<S, R>,
    archive: &MemoryArchive,
    misbehaviour: tranche_consensus::Misbehaviour,
    journal: String,
) -> Running
where
    S: commonware_p2p::Sender<PublicKey = ed25519::PublicKey>,
    R: commonware_p2p::Receiver<PublicKey = ed25519::PublicKey>,
{
    let context = context
        .child("validator")
        .with_attribute("index", i)
        .with_attribute("incarnation", incarnation);
    let key = validator_key(i);
    let start = match archive.latest() {
        Some((block, ledger)) => Start::at(Tip::of(&block), ledger),
        None => Start::genesis(genesis.clone()),
    }
    .misbehaving(misbehaviour);
    // Finalized blocks are read back from the archive; nobody listens here.
    let (observer, _) = mpsc::channel(1);
    let launched = launch(
        &context,
        consensus_key(&key),
        NAMESPACE,
        start,
        archive.clone(),
        control,
        blocks,
        channels,
        observer,
        journal,
    );
    Running {
        mailbox: launched.mailbox,
        tasks: vec![launched.application, launched.engines],
    }
}

async fn set_links(
    oracle: &simulated::Oracle<ed25519::PublicKey, deterministic::Context>,
    pubs: &[ed25519::PublicKey],
    link: &Link,
    connected: impl Fn(usize, usize) -> bool,
    add: bool,
) {
    for (i, a) in pubs.iter().enumerate() {
        for (j, b) in pubs.iter().enumerate() {
            if i != j && connected(i, j) {
                if add {
                    oracle
                        .add_link(a.clone(), b.clone(), link.clone())
                        .await
                        .unwrap();
                } else {
                    oracle.remove_link(a.clone(), b.clone()).await.unwrap();
                }
            }
        }
    }
}

fn heights(archives: &[Option<MemoryArchive>]) -> impl Iterator<Item = u64> + '_ {
    archives
        .iter()
        .flatten()
        .map(|a| a.latest().map_or(0, |(b, _)| b.header.height))
}

/// The height every running validator has finalized.
fn lowest_height(archives: &[Option<MemoryArchive>]) -> u64 {
    heights(archives).min().unwrap_or(0)
}

/// The height some running validator has finalized.
fn highest_height(archives: &[Option<MemoryArchive>]) -> u64 {
    heights(archives).max().unwrap_or(0)
}

/// Runs a scenario until every running validator has finalized all its
/// transactions, at least [`BLOCKS_MIN`] blocks and a few blocks past the
/// end of its fault; returns each running validator's finalized chain and
/// checks the ledger's invariants on each final state. Panics if the
/// network stops making progress (the runtime times out).
pub fn run_scenario(scenario: &Scenario) -> Chains {
    let Scenario {
        seed,
        validators: n,
        down,
        txs,
        ref link,
        fault,
    } = *scenario;
    let link = link.clone();
    let cfg = deterministic::Config::new()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(300)));
    deterministic::Runner::new(cfg).start(|context| async move {
        let keys: Vec<Keypair> = (0..n).map(validator_key).collect();
        let pubs: Vec<ed25519::PublicKey> =
            keys.iter().map(|k| consensus_key(k).public_key()).collect();
        for (ours, theirs) in keys.iter().zip(&pubs) {
            assert_eq!(
                ours.public_key().0.as_slice(),
                theirs.as_ref(),
                "one key for both worlds"
            );
        }
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size: 4 * 1024 * 1024,
                max_peers_per_set: NZUsize!(n),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            pubs.clone(),
        )
        .await;
        network.start();
        let byzantine = fault.byzantine().then_some(n - 1);
        // The Byzantine validator's links lose and delay like everyone's:
        // an equivocator's second vote may come long after a round's
        // certificate, which the witness on each validator's votes channel
        // still catches.
        set_links(&oracle, &pubs, &link, |_, _| true, true).await;
        let spare = matches!(fault, Fault::Join { .. }).then_some(n - 1);
        let genesis = genesis(n, spare);
        // Every validator's channels exist before any engine starts, so no
        // early message is lost to a channel not yet registered.
        let mut channels = Vec::new();
        for key in &pubs {
            channels.push(register(&oracle, key).await);
        }
        let archives: Vec<Option<MemoryArchive>> = (0..n)
            .map(|i| (i >= down && Some(i) != byzantine).then(MemoryArchive::default))
            .collect();
        let mut running: Vec<Option<Running>> = Vec::new();
        let pairs = tranche_consensus::Pairs::default();
        // Kept, so that no Byzantine task is dropped before the run ends.
        let mut byzantine_tasks = Vec::new();
        for (i, ch) in channels.into_iter().enumerate() {
            if Some(i) == byzantine {
                let ctx = context.child("byzantine");
                byzantine_tasks =
                    byzantine::start(&ctx, fault, i, ch, &genesis, &pubs, &pairs).await;
                running.push(None);
                continue;
            }
            let misbehaviour = if i == n - 1 {
                fault.misbehaviour(&pairs)
            } else {
                tranche_consensus::Misbehaviour::None
            };
            running.push(archives[i].as_ref().map(|archive| {
                start_validator(&context, i, 0, &genesis, ch, archive, misbehaviour)
            }));
        }
        // Clients send every transaction to every validator.
        let now = context
            .current()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        for nonce in 1..=txs {
            let tx = register_wallet(nonce, Timestamp(now + 3_600_000));
            for r in running.iter().flatten() {
                r.mailbox.submit(tx.clone()).await.unwrap();
            }
        }
        let mut goal = BLOCKS_MIN;
        match fault {
            Fault::None
            | Fault::Equivocate
            | Fault::BadBlocks(_)
            | Fault::TwoFaced
            | Fault::SilentThenFlood { .. }
            | Fault::Twins => {}
            // Room for the skewed validator to lead a few views.
            Fault::ClockSkew { .. } => goal = 3 * EPOCH_BLOCKS,
            Fault::Join { at } => {
                while lowest_height(&archives) < at {
                    context.sleep(Duration::from_millis(50)).await;
                }
                let newcomer = validator_key(n - 1);
                let bond = Transaction {
                    chain_id: CHAIN.parse().unwrap(),
                    signer: newcomer.public_key(),
                    nonce: 1,
                    valid_until: Timestamp(now + 3_600_000),
                    payload: Payload::BondValidator(BondValidator {
                        consensus_key: newcomer.public_key(),
                        amount: Stake(300),
                    }),
                };
                let bond = sign_transaction(&newcomer, bond).unwrap();
                for r in running.iter().flatten() {
                    r.mailbox.submit(bond.clone()).await.unwrap();
                }
                // Two epochs after it bonds, with the new committee at work.
                goal = goal.max(highest_height(&archives) + 3 * EPOCH_BLOCKS);
            }
            Fault::Partition { at, heal_ms } => {
                while lowest_height(&archives) < at {
                    context.sleep(Duration::from_millis(50)).await;
                }
                let half = |i: usize| i < n / 2;
                set_links(&oracle, &pubs, &link, |i, j| half(i) != half(j), false).await;
                // Give what was in flight time to land, then nothing more
                // may finalize: neither half holds a quorum.
                context.sleep(Duration::from_millis(heal_ms / 2)).await;
                let cut = highest_height(&archives);
                context.sleep(Duration::from_millis(heal_ms / 2)).await;
                assert_eq!(
                    highest_height(&archives),
                    cut,
                    "seed {seed}: a partition with no quorum on either side finalized blocks"
                );
                set_links(&oracle, &pubs, &link, |i, j| half(i) != half(j), true).await;
                goal = goal.max(lowest_height(&archives) + 3);
            }
            Fault::Crash { at, down_ms } => {
                while lowest_height(&archives) < at {
                    context.sleep(Duration::from_millis(50)).await;
                }
                let victim = n - 1;
                let killed = running[victim].take().expect("the last validator runs");
                for task in killed.tasks {
                    task.abort();
                }
                context.sleep(Duration::from_millis(down_ms)).await;
                let channels = register(&oracle, &pubs[victim]).await;
                let archive = archives[victim].as_ref().expect("it has an archive");
                running[victim] = Some(start_validator(
                    &context,
                    victim,
                    1,
                    &genesis,
                    channels,
                    archive,
                    tranche_consensus::Misbehaviour::None,
                ));
                // It must catch up past where the others are now.
                goal = goal.max(highest_height(&archives) + 3);
            }
        }
        let signer = validator_key(0).public_key();
        let offender = (fault == Fault::Equivocate).then(|| validator_key(n - 1).public_key());
        let punished = |ledger: &Ledger| match offender {
            Some(key) => ledger
                .state()
                .equivocations
                .keys()
                .any(|(k, _, _)| *k == key),
            None => true,
        };
        // A validator leads only some views of each epoch (round robin from
        // an offset that moves by one each epoch), so with 7 validators and
        // 5-block epochs one may wait three epochs to lead. A run whose
        // fault needs the last validator to lead (a newcomer, a clock
        // behind that must take part once it has found so) goes on until
        // it has: one that never gets to is caught by the runtime's
        // timeout.
        let newcomer = validator_key(n - 1).public_key();
        let led = |a: &MemoryArchive| match fault {
            Fault::Join { .. } | Fault::ClockSkew { ms: ..0 } => a
                .chain()
                .iter()
                .filter_map(|(h, _, _)| a.block(*h).ok().flatten())
                .any(|b| b.header.proposer == newcomer),
            Fault::TwoFaced => !pairs.lock().unwrap_or_else(|e| e.into_inner()).is_empty(),
            _ => true,
        };
        loop {
            let done = archives.iter().flatten().all(|a| match a.latest() {
                Some((block, ledger)) => {
                    block.header.height >= goal
                        && ledger.next_nonce(&signer) > txs
                        && punished(&ledger)
                        && led(a)
                }
                None => false,
            });
            if done {
                break;
            }
            context.sleep(Duration::from_millis(50)).await;
        }
        for task in byzantine_tasks {
            task.abort();
        }
        if fault == Fault::TwoFaced {
            let pairs = pairs.lock().unwrap_or_else(|e| e.into_inner());
            assert!(
                !pairs.is_empty(),
                "seed {seed}: the two-faced leader never led"
            );
        }
        let last = validator_key(n - 1).public_key();
        // Whether the last validator's blocks must all have been refused:
        // invalid ones, or ones timed beyond the drift others allow.
        let refused = match fault {
            Fault::BadBlocks(_) => true,
            Fault::ClockSkew { ms } => {
                ms > i64::try_from(tranche_block::BlockLimits::default().future_drift_ms_max)
                    .expect("a small drift")
            }
            _ => false,
        };
        archives
            .iter()
            .flatten()
            .map(|a| {
                let (_, ledger) = a.latest().expect("every validator finalized blocks");
                ledger.check_invariants();
                let proposed_by_last = a
                    .chain()
                    .iter()
                    .filter_map(|(h, _, _)| a.block(*h).ok().flatten())
                    .filter(|b| b.header.proposer == last)
                    .count();
                if refused {
                    assert_eq!(
                        proposed_by_last, 0,
                        "seed {seed}: a block the others must refuse is final"
                    );
                }
                if let Fault::ClockSkew { ms } = fault {
                    assert!(
                        ms > 0 || proposed_by_last > 0,
                        "seed {seed}: the validator whose clock is behind never got a block final"
                    );
                }
                if let Fault::Join { .. } = fault {
                    let keys: Vec<PublicKey> =
                        ledger.committee().members.0.iter().map(|m| m.key).collect();
                    assert!(
                        keys.contains(&validator_key(n - 1).public_key())
                            && !keys.contains(&validator_key(n - 2).public_key()),
                        "seed {seed}: the committee did not change"
                    );
                    // It could only propose once on the committee.
                    let proposed = a
                        .chain()
                        .iter()
                        .filter_map(|(h, _, _)| a.block(*h).ok().flatten())
                        .any(|b| b.header.proposer == validator_key(n - 1).public_key());
                    assert!(proposed, "seed {seed}: the newcomer proposed nothing");
                }
                if let Some(i) = byzantine.filter(|_| fault == Fault::Equivocate) {
                    let org: OrgId = format!("validator-{i}").parse().unwrap();
                    let v = &ledger.state().validators[&org];
                    assert!(
                        v.tombstoned && v.bonded.is_zero(),
                        "seed {seed}: the equivocator keeps its bond"
                    );
                    assert!(
                        ledger.elect(n).iter().all(|(o, _, _)| *o != org),
                        "seed {seed}: the equivocator is still electable"
                    );
                }
                a.chain()
            })
            .collect()
    })
}

/// Checks that every validator's chain agrees on the common prefix; `label`
/// (the seed) is printed on failure so the run can be replayed. Returns the
/// length of the common prefix.
pub fn common_prefix_agrees(label: u64, chains: &Chains) -> usize {
    let shortest = chains.iter().map(Vec::len).min().unwrap();
    assert!(shortest > 0);
    for h in 0..shortest {
        let first = chains[0][h];
        assert_eq!(
            first.0,
            h as u64 + 1,
            "seed {label}: heights are consecutive from 1"
        );
        for c in chains {
            assert_eq!(
                c[h],
                first,
                "seed {label}: validators agree on block and state at height {}",
                h + 1
            );
        }
    }
    shortest
}
