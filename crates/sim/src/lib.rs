//! Whole networks of validators in commonware's deterministic runtime over a
//! simulated network, for tests and `tranche sim`: the same seed replays the
//! same run exactly.

use commonware_cryptography::{ed25519, Signer as _};
pub use commonware_p2p::simulated::Link;
use commonware_p2p::simulated::{self, Network};
use commonware_runtime::{
    deterministic, Clock as _, Quota, Runner as _, Spawner as _, Supervisor as _,
};
use commonware_utils::channel::mpsc;
use commonware_utils::ordered::Set;
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
use tranche_consensus::{launch, Archive as _, EngineChannels, MemoryArchive, Scheme, Start};
use tranche_crypto::{sign_transaction, Keypair};
use tranche_ledger::{Genesis, GenesisOrganisation, Ledger};
use tranche_types::commonware_codec::DecodeExt as _;
use tranche_types::*;

const CHAIN: &str = "tranche-sim";
const NAMESPACE: &[u8] = b"tranche-sim";
/// The fewest blocks every run finalizes.
pub const BLOCKS_MIN: u64 = 8;
/// Epochs in which a Byzantine validator is ready to equivocate.
const BYZANTINE_EPOCHS: u64 = 64;
/// Blocks per epoch in simulated chains.
pub const EPOCH_BLOCKS: u64 = 5;
const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

fn validator_key(i: usize) -> Keypair {
    Keypair::from_seed(&[i as u8 + 1; 32])
}

fn consensus_key(k: &Keypair) -> ed25519::PrivateKey {
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

/// A Byzantine validator that never proposes: for each proposal it sees a
/// vote on, it signs a vote for that proposal and then one for a made-up
/// block in the same view, and sends both to everyone. (In that order: a
/// vote for an unknown block arriving first would only get it blocked, not
/// caught.)
async fn double_vote<S, R>(scheme: Scheme, (mut sender, mut receiver): (S, R))
where
    S: commonware_p2p::Sender<PublicKey = ed25519::PublicKey>,
    R: commonware_p2p::Receiver<PublicKey = ed25519::PublicKey>,
{
    use commonware_consensus::simplex::types::{Finalize, Notarize, Proposal, Vote};
    use tranche_types::commonware_codec::Encode as _;
    let mut done = std::collections::HashSet::new();
    let forged = |p: &Proposal<tranche_consensus::Digest>| {
        let payload =
            commonware_cryptography::sha256::Digest(Hash::digest(b"forged", &p.payload.0).0);
        Proposal::new(p.round, p.parent, payload)
    };
    while let Ok((_, bytes)) = receiver.recv().await {
        let Ok(vote) = Vote::<Scheme, tranche_consensus::Digest>::decode(bytes) else {
            continue;
        };
        let votes = match vote {
            Vote::Notarize(n) if done.insert((0u8, n.proposal.round)) => [
                Notarize::sign(&scheme, n.proposal.clone()).map(Vote::Notarize),
                Notarize::sign(&scheme, forged(&n.proposal)).map(Vote::Notarize),
            ],
            Vote::Finalize(f) if done.insert((1u8, f.proposal.round)) => [
                Finalize::sign(&scheme, f.proposal.clone()).map(Vote::Finalize),
                Finalize::sign(&scheme, forged(&f.proposal)).map(Vote::Finalize),
            ],
            _ => continue,
        };
        for v in votes.into_iter().flatten() {
            sender.send(commonware_p2p::Recipients::All, v.encode(), true);
        }
    }
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
type Channels = (
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

async fn register(
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
struct Running {
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
) -> Running {
    let (control, votes, certificates, resolver, blocks) = channels;
    let context = context
        .child("validator")
        .with_attribute("index", i)
        .with_attribute("incarnation", incarnation);
    let key = validator_key(i);
    let start = match archive.latest() {
        Some((block, ledger)) => Start {
            tip: Tip::of(&block),
            ledger,
        },
        None => Start::genesis(genesis.clone()),
    };
    // Finalized blocks are read back from the archive; nobody listens here.
    let (observer, _) = mpsc::unbounded_channel();
    let launched = launch(
        &context,
        consensus_key(&key),
        NAMESPACE,
        start,
        archive.clone(),
        control,
        blocks,
        EngineChannels {
            votes,
            certificates,
            resolver,
        },
        observer,
        format!("validator-{i}"),
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
        let participants: Set<ed25519::PublicKey> = Set::try_from(pubs.clone()).unwrap();
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
        let byzantine = (fault == Fault::Equivocate).then_some(n - 1);
        let honest = |i: usize| Some(i) != byzantine;
        set_links(&oracle, &pubs, &link, |i, j| honest(i) && honest(j), true).await;
        if byzantine.is_some() {
            // The equivocator is well connected: its two votes reach the
            // others before their quorum does. The engine keeps whole votes
            // only until a round's certificate forms; a conflicting vote
            // arriving later gets its sender blocked, with no evidence.
            let fast = self::link(1, 0, 0);
            set_links(
                &oracle,
                &pubs,
                &fast,
                |i, j| !(honest(i) && honest(j)),
                true,
            )
            .await;
        }
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
        for (i, ch) in channels.into_iter().enumerate() {
            if Some(i) == byzantine {
                // It equivocates in every epoch it sits on the committee
                // (until it is slashed, which takes it off), each on that
                // epoch's sub-channel: the committee stays the same until then.
                let (mux, mut handle) = commonware_p2p::utils::mux::Muxer::new(
                    context.child("byzantine_votes"),
                    ch.1 .0,
                    ch.1 .1,
                );
                mux.start();
                for epoch in 0..BYZANTINE_EPOCHS {
                    let scheme =
                        Scheme::signer(NAMESPACE, participants.clone(), consensus_key(&keys[i]))
                            .unwrap();
                    let channel = handle.register(epoch).await.unwrap();
                    context
                        .child("byzantine")
                        .with_attribute("epoch", epoch)
                        .spawn(move |_| double_vote(scheme, channel));
                }
                running.push(None);
                continue;
            }
            running.push(
                archives[i]
                    .as_ref()
                    .map(|archive| start_validator(&context, i, 0, &genesis, ch, archive)),
            );
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
            Fault::None | Fault::Equivocate => {}
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
                    &context, victim, 1, &genesis, channels, archive,
                ));
                // It must catch up past where the others are now.
                goal = goal.max(highest_height(&archives) + 3);
            }
        }
        let signer = validator_key(0).public_key();
        let offender = byzantine.map(|i| validator_key(i).public_key());
        let punished = |ledger: &Ledger| match offender {
            Some(key) => ledger
                .state()
                .equivocations
                .keys()
                .any(|(k, _, _)| *k == key),
            None => true,
        };
        loop {
            let done = archives.iter().flatten().all(|a| match a.latest() {
                Some((block, ledger)) => {
                    block.header.height >= goal
                        && ledger.next_nonce(&signer) > txs
                        && punished(&ledger)
                }
                None => false,
            });
            if done {
                break;
            }
            context.sleep(Duration::from_millis(50)).await;
        }
        archives
            .iter()
            .flatten()
            .map(|a| {
                let (_, ledger) = a.latest().expect("every validator finalized blocks");
                ledger.check_invariants();
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
                if let Some(i) = byzantine {
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
