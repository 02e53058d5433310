//! Whole networks of validators in commonware's deterministic runtime over a
//! simulated network, for tests and `tranche sim`: the same seed replays the
//! same run exactly.

use commonware_consensus::simplex;
use commonware_cryptography::{ed25519, Signer as _};
pub use commonware_p2p::simulated::Link;
use commonware_p2p::simulated::{self, Network};
use commonware_runtime::{deterministic, Clock as _, Quota, Runner as _, Supervisor as _};
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
use crate::{genesis_digest, Application, MemoryArchive, Scheme, Start};
use std::time::{Duration, UNIX_EPOCH};
use tranche_crypto::{sign_transaction, Keypair};
use tranche_ledger::{Genesis, GenesisOrganisation, Ledger};
use tranche_node::Tip;
use tranche_types::commonware_codec::DecodeExt as _;
use tranche_types::*;

const CHAIN: &str = "tranche-sim";
/// The fewest blocks every run finalizes.
pub const BLOCKS_MIN: u64 = 8;
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

fn genesis(n: usize) -> Ledger {
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
            stake: 100,
            bond: 100,
        })
        .collect();
    Ledger::genesis(&Genesis {
        chain_id: CHAIN.parse().unwrap(),
        organisations,
    })
    .unwrap()
}

fn register_wallet(nonce: u64, valid_until: Timestamp) -> SignedTransaction {
    let mut seed = [9u8; 32];
    seed[..8].copy_from_slice(&nonce.to_be_bytes());
    let tx = Transaction {
        chain_id: CHAIN.parse().unwrap(),
        signer: validator_key(0).public_key(),
        nonce,
        valid_until,
        payload: Payload::RegisterWallet(RegisterWallet {
            wallet: Keypair::from_seed(&seed).address(),
            did: Did::parse(&format!("did:key:z6MkSim{nonce}")).unwrap(),
        }),
    };
    sign_transaction(&validator_key(0), tx).unwrap()
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
    /// The last validator is Byzantine: for every vote it sees it signs two
    /// conflicting ones (commonware's `conflicter`) and never proposes. The
    /// others must keep finalizing, record its equivocation on chain and
    /// slash its bond.
    Equivocate,
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
    mailbox: crate::Mailbox,
    tasks: Vec<commonware_runtime::Handle<()>>,
}

/// Starts validator `i` from what its archive holds (genesis if nothing).
fn start_validator(
    context: &deterministic::Context,
    i: usize,
    incarnation: usize,
    genesis: &Ledger,
    participants: &Set<ed25519::PublicKey>,
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
    let scheme = Scheme::signer(b"tranche-sim", participants.clone(), consensus_key(&key)).unwrap();
    let (application, mailbox, reporter) = Application::new(
        context.child("application"),
        key.public_key(),
        scheme.clone(),
        start,
        archive.clone(),
        blocks,
        observer,
    );
    let app = application.start();
    let engine = simplex::Engine::new(
        context.child("engine"),
        crate::engine_config(
            scheme,
            control.clone(),
            mailbox.clone(),
            reporter,
            format!("validator-{i}"),
            genesis_digest(&CHAIN.parse().unwrap()),
        ),
    );
    let engine = engine.start(votes, certificates, resolver);
    Running {
        mailbox,
        tasks: vec![app, engine],
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
        set_links(&oracle, &pubs, &link, |_, _| true, true).await;
        let genesis = genesis(n);
        // Every validator's channels exist before any engine starts, so no
        // early message is lost to a channel not yet registered.
        let mut channels = Vec::new();
        for key in &pubs {
            channels.push(register(&oracle, key).await);
        }
        let byzantine = (fault == Fault::Equivocate).then_some(n - 1);
        let archives: Vec<Option<MemoryArchive>> = (0..n)
            .map(|i| (i >= down && Some(i) != byzantine).then(MemoryArchive::default))
            .collect();
        let mut running: Vec<Option<Running>> = Vec::new();
        for (i, ch) in channels.into_iter().enumerate() {
            if Some(i) == byzantine {
                let scheme = Scheme::signer(
                    b"tranche-sim",
                    participants.clone(),
                    consensus_key(&keys[i]),
                )
                .unwrap();
                let conflicter = simplex::mocks::conflicter::Conflicter::<
                    _,
                    _,
                    commonware_cryptography::Sha256,
                >::new(
                    context.child("byzantine"),
                    simplex::mocks::conflicter::Config { scheme },
                );
                conflicter.start(ch.1);
                running.push(None);
                continue;
            }
            running.push(archives[i].as_ref().map(|archive| {
                start_validator(&context, i, 0, &genesis, &participants, ch, archive)
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
            Fault::None | Fault::Equivocate => {}
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
                    &participants,
                    channels,
                    archive,
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
                if let Some(i) = byzantine {
                    let org: OrgId = format!("validator-{i}").parse().unwrap();
                    let v = &ledger.state().validators[&org];
                    assert!(
                        v.tombstoned && v.bonded == 0,
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
