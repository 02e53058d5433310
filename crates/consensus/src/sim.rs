//! Whole networks of validators in commonware's deterministic runtime over a
//! simulated network, for tests and `tranche sim`: the same seed replays the
//! same run exactly.

use commonware_consensus::simplex::{
    self, elector::RoundRobin, Floor, ForwardPolicy, SkipBudget, SkipPolicy,
};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_cryptography::{ed25519, Signer as _};
pub use commonware_p2p::simulated::Link;
use commonware_p2p::simulated::{self, Network};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{deterministic, Clock as _, Quota, Runner as _, Supervisor as _};
use commonware_utils::channel::mpsc;
use commonware_utils::ordered::Set;
use commonware_utils::{probability, NZDuration, NZUsize, NZU16, NZU32};

/// A link between every pair of validators: `latency_ms` give or take
/// `jitter_ms`, nothing lost.
pub fn link(latency_ms: u64, jitter_ms: u64) -> Link {
    Link {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(jitter_ms),
        success_rate: probability!(1.0),
    }
}
use crate::{genesis_digest, Application, Scheme};
use std::time::{Duration, UNIX_EPOCH};
use tranche_crypto::{sign_transaction, Keypair};
use tranche_ledger::{Genesis, GenesisOrganisation, Ledger};
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
        })
        .collect();
    Ledger::genesis(&Genesis {
        chain_id: CHAIN.parse().unwrap(),
        organisations,
    })
    .unwrap()
}

fn register(nonce: u64, valid_until: Timestamp) -> SignedTransaction {
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

/// Runs `n` validators, of which the first `down` never start (crashed),
/// until each running one has finalized `txs` applied transactions; returns
/// each running validator's finalized chain as (height, block hash, root).
/// Panics if the network stops making progress (the runtime times out).
pub fn run(seed: u64, n: usize, down: usize, txs: u64, link: Link) -> Vec<Vec<(u64, Hash, Hash)>> {
    let cfg = deterministic::Config::new()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(120)));
    deterministic::Runner::new(cfg).start(|context| async move {
        let keys: Vec<Keypair> = (0..n).map(validator_key).collect();
        let privs: Vec<ed25519::PrivateKey> = keys.iter().map(consensus_key).collect();
        let pubs: Vec<ed25519::PublicKey> = privs.iter().map(|p| p.public_key()).collect();
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
        for a in &pubs {
            for b in &pubs {
                if a != b {
                    oracle
                        .add_link(a.clone(), b.clone(), link.clone())
                        .await
                        .unwrap();
                }
            }
        }
        let genesis = genesis(n);
        // Every validator's channels exist before any engine starts, so no
        // early message is lost to a channel not yet registered.
        let mut channels = Vec::new();
        for key in &pubs {
            let control = oracle.control(key.clone());
            let votes = control.register(0, QUOTA).await.unwrap();
            let certificates = control.register(1, QUOTA).await.unwrap();
            let resolver = control.register(2, QUOTA).await.unwrap();
            let blocks = control.register(3, QUOTA).await.unwrap();
            channels.push((control, votes, certificates, resolver, blocks));
        }
        let mut mailboxes = Vec::new();
        let mut observers = Vec::new();
        for (i, (control, votes, certificates, resolver, blocks)) in
            channels.into_iter().enumerate().skip(down)
        {
            let context = context.child("validator").with_attribute("index", i);
            let (observer, finalized) = mpsc::unbounded_channel();
            let (application, mailbox, reporter) = Application::new(
                context.child("application"),
                keys[i].public_key(),
                genesis.clone(),
                blocks,
                observer,
            );
            application.start();
            let scheme =
                Scheme::signer(b"tranche-sim", participants.clone(), privs[i].clone()).unwrap();
            let engine = simplex::Engine::new(
                context.child("engine"),
                simplex::Config {
                    scheme,
                    elector: RoundRobin::<commonware_cryptography::Sha256>::default(),
                    blocker: control.clone(),
                    automaton: mailbox.clone(),
                    relay: mailbox.clone(),
                    reporter,
                    strategy: Sequential,
                    partition: format!("validator-{i}"),
                    mailbox_size: NZUsize!(1024),
                    epoch: Epoch::new(0),
                    floor: Floor::Genesis(genesis_digest(&CHAIN.parse().unwrap())),
                    leader_timeout: Duration::from_secs(1),
                    certification_timeout: Duration::from_secs(2),
                    timeout_retry: Duration::from_secs(5),
                    fetch_timeout: NZDuration!(Duration::from_secs(1)),
                    fetch_retry_delay: Duration::from_millis(100),
                    view_retention: ViewDelta::new(10),
                    skip: SkipPolicy::Enabled {
                        timeout: Duration::from_secs(6),
                        budget: SkipBudget::Participants,
                    },
                    replay_buffer: NZUsize!(1024 * 1024),
                    write_buffer: NZUsize!(1024 * 1024),
                    page_cache: CacheRef::new(NZU16!(1024), NZUsize!(10)),
                    forward: ForwardPolicy::Disabled,
                    track_historical_votes: false,
                },
            );
            engine.start(votes, certificates, resolver);
            mailboxes.push(mailbox);
            observers.push(finalized);
        }
        // Clients send every transaction to every validator.
        let now = context
            .current()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        for nonce in 1..=txs {
            let tx = register(nonce, Timestamp(now + 3_600_000));
            for m in &mailboxes {
                m.submit(tx.clone()).await.unwrap();
            }
        }
        let mut chains = Vec::new();
        for mut observer in observers {
            let mut chain = Vec::new();
            let mut applied = 0u64;
            // At least a few blocks, so that chains are compared over more
            // than the block that happened to carry every transaction.
            while applied < txs || (chain.len() as u64) < BLOCKS_MIN {
                let f = observer.recv().await.expect("the validator keeps running");
                applied += f
                    .receipts
                    .iter()
                    .filter(|r| r.outcome == Outcome::Applied)
                    .count() as u64;
                chain.push((f.block.header.height, f.block.hash(), f.state_root));
            }
            chains.push(chain);
        }
        chains
    })
}

/// Checks that every validator's chain agrees on the common prefix; `label`
/// (the seed) is printed on failure so the run can be replayed. Returns the
/// length of the common prefix.
pub fn common_prefix_agrees(label: u64, chains: &[Vec<(u64, Hash, Hash)>]) -> usize {
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
