//! Wires a validator together on commonware's tokio runtime: the chain
//! store, the p2p network, the application and consensus engine, and the
//! node API.

use crate::admission::Admission;
use crate::api::{self, Shared, View};
use crate::config::{read_text, NodeConfig};
use crate::disk;
use commonware_cryptography::{ed25519, ChaCha20Poly1305};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::AddressableManager as _;
use commonware_runtime::{tokio as cw_tokio, Quota, Runner as _, Spawner as _, Supervisor as _};
use commonware_stream::{cups, cups::Cups, sake, sake::Sake};
use commonware_utils::channel::mpsc;
use commonware_utils::{NZUsize, NZU32};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tranche_block::Tip;
use tranche_consensus::{EngineChannels, Start};
use tranche_crypto::Keypair;
use tranche_ledger::{Genesis, Ledger};
use tranche_storage::ChainStore;
use tranche_types::commonware_codec::DecodeExt as _;
use tranche_types::PublicKey;

/// Why a node cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration, genesis or data directory is unusable.
    #[error("{0}")]
    Setup(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] tranche_storage::StorageError),
    /// The node stopped itself, saying why: its disk ran short of space, or
    /// its chain store failed to write.
    #[error("the node stopped: {0}")]
    Stopped(String),
    /// A listener could not be opened.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        reason: String,
    },
}

fn setup(message: impl Into<String>) -> NodeError {
    NodeError::Setup(message.into())
}

/// The largest message on the p2p network: a full block, with room.
const MESSAGE_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// Per-peer message rate on each channel. Each channel's inbound mailbox
/// holds one burst per peer, so this also sizes memory.
const QUOTA: Quota = Quota::per_second(NZU32!(2_000));

/// Reads the genesis file and builds the genesis ledger.
pub fn load_genesis(config: &NodeConfig) -> Result<Ledger, NodeError> {
    let text = read_text(&config.genesis).map_err(|e| setup(e.to_string()))?;
    let genesis: Genesis = serde_json::from_str(&text).map_err(|e| {
        setup(format!(
            "{} is not a genesis file: {e}",
            config.genesis.display()
        ))
    })?;
    Ledger::genesis(&genesis).map_err(|e| setup(format!("{}: {e}", config.genesis.display())))
}

fn consensus_key(key: &Keypair) -> ed25519::PrivateKey {
    ed25519::PrivateKey::decode(tranche_types::commonware_codec::Copying(
        key.seed().as_slice(),
    ))
    .expect("an ed25519 seed is a consensus key")
}

fn consensus_public(key: &PublicKey) -> Result<ed25519::PublicKey, NodeError> {
    ed25519::PublicKey::decode(tranche_types::commonware_codec::Copying(key.0.as_slice()))
        .map_err(|e| setup(format!("{key} is not a valid ed25519 key: {e}")))
}

/// Opens the chain store and finds where this node starts: the last block it
/// stored (after checking the store belongs to this genesis), or genesis.
fn open_store(
    config: &NodeConfig,
    genesis: &Ledger,
) -> Result<(Arc<ChainStore>, Start), NodeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        setup(format!(
            "cannot create the data directory {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let store = ChainStore::open(&config.data_dir.join("chain.redb"))?;
    if let Some(first) = store.block(1)? {
        if &first.header.chain_id != genesis.chain_id()
            || first.header.parent_state_root != genesis.state_root()
        {
            return Err(setup(format!(
                "the data directory {} holds another chain ({}) than this genesis ({}); use another data directory",
                config.data_dir.display(),
                first.header.chain_id,
                genesis.chain_id()
            )));
        }
    }
    let start = match store.load_ledger(genesis)? {
        Some((height, ledger)) => {
            let checkpoint = store.checkpoint_height()?.unwrap_or(0);
            tracing::info!(
                height,
                checkpoint,
                executed_again = height.saturating_sub(checkpoint),
                "state read back: the checkpoint, then the blocks stored after it"
            );
            let block = store
                .block(height)?
                .ok_or_else(|| setup(format!("block {height} is missing from the store")))?;
            Start::at(Tip::of(&block), ledger)
        }
        None => {
            let ledger = genesis.clone();
            store.keep_state_of(&ledger);
            Start::genesis(ledger)
        }
    };
    Ok((Arc::new(store), start))
}

/// Runs a validator until it is interrupted (Ctrl-C or SIGTERM). Blocks the
/// calling thread.
pub fn run(config: &NodeConfig, key: Keypair) -> Result<(), NodeError> {
    let genesis = load_genesis(config)?;
    let me = key.public_key();
    let my_org = genesis.organisation_of_key(&me).cloned();
    let mut configured = Vec::with_capacity(config.peers.len());
    for peer in &config.peers {
        configured.push((peer.key, consensus_public(&peer.key)?, peer.address));
    }
    let mut admission = Admission::new((me, consensus_public(&me)?, config.p2p_listen), configured);
    let max_peers = NonZeroUsize::new(config.peers.len() + 1).expect("the list includes this node");
    let tls = config
        .tls
        .as_ref()
        .map(|t| tranche_api::tls::server_config(&t.cert, &t.key))
        .transpose()
        .map_err(setup)?;
    let scheme_name = if tls.is_some() { "https" } else { "http" };
    let (store, start) = open_store(config, &genesis)?;
    let data_dir = config.data_dir.clone();
    let min_free_mb = config
        .min_free_disk_mb
        .unwrap_or(disk::MIN_FREE_DISK_MB_DEFAULT);
    if let Some(why) = disk::short_of_space(&data_dir, min_free_mb) {
        return Err(NodeError::Stopped(why));
    }
    // The committee of the epoch this node resumes in: it can only take part
    // (or follow) if it can reach some member.
    let committee = start.ledger.committee().clone();
    if committee.members.0.is_empty() {
        return Err(setup(
            "this chain has no validators: the genesis gives no organisation the validator role",
        ));
    }
    let reachable = committee
        .members
        .0
        .iter()
        .any(|m| m.key != me && config.peers.iter().any(|p| p.key == m.key));
    let alone = committee.members.0.len() == 1 && committee.members.0[0].key == me;
    if !reachable && !alone {
        let names: Vec<String> = committee
            .members
            .0
            .iter()
            .map(|m| format!("{} ({})", m.org, m.key))
            .collect();
        return Err(setup(format!(
            "none of this epoch's validators is under [[peers]]; add their addresses: {}",
            names.join(", ")
        )));
    }
    for m in committee.members.0.iter() {
        if m.key != me && !config.peers.iter().any(|p| p.key == m.key) {
            tracing::warn!(org = %m.org, key = %m.key, "a validator of this epoch has no address under [[peers]]");
        }
    }
    let chain_id = genesis.chain_id().clone();
    let api_listener =
        std::net::TcpListener::bind(config.api_listen).map_err(|e| NodeError::Listen {
            address: config.api_listen,
            reason: e.to_string(),
        })?;
    api_listener
        .set_nonblocking(true)
        .map_err(|e| setup(e.to_string()))?;
    let runtime = cw_tokio::Config::new().with_storage_directory(config.data_dir.join("consensus"));
    let p2p_listen = config.p2p_listen;
    let api_listen = config.api_listen;
    let who = my_org
        .as_ref()
        .map_or_else(|| me.to_string(), |o| o.to_string());
    tracing::info!(node = %who, chain = %chain_id, height = start.tip.height, epoch = committee.epoch, "starting node");
    cw_tokio::Runner::new(runtime).start(|context| async move {
        let signer = consensus_key(&key);
        let namespace = format!("tranche/{chain_id}");
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: signer.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let mut p2p_config = lookup::Config::recommended(
            handshake,
            namespace.as_bytes(),
            p2p_listen,
            max_peers,
            MESSAGE_BYTES_MAX,
            NZUsize!(4096),
        );
        // Validators of a private network may sit on private addresses.
        p2p_config.allow_private_ips = true;
        // Validators on one host (a devnet) share an IP; the default per-IP
        // handshake rate would turn them away while they connect.
        p2p_config.allowed_handshake_rate_per_ip = Quota::per_second(NZU32!(128));
        p2p_config.allowed_handshake_rate_per_subnet = Quota::per_second(NZU32!(256));
        p2p_config.dial_frequency = Duration::from_millis(500);
        // A failed dial (a peer not yet listening, both sides dialing at
        // once) reserves the peer for this long; the default 60 s left a
        // validator cut off from some peers for a minute after start-up or
        // any dropped link, costing a leader timeout in every view it led.
        p2p_config.peer_connection_cooldown = Duration::from_secs(1);
        // One set at a time: a peer the chain removes is dropped at once.
        p2p_config.tracked_peer_sets = NZUsize!(1);
        let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p_config);
        // Only the configured peers the chain admits (C-1), from where this
        // node resumes and then after each finalized block.
        if let Some(peers) = admission.update(&start.ledger) {
            let _ = oracle.track(start.tip.height, peers);
        }
        let votes = network.register(0, QUOTA);
        let certificates = network.register(1, QUOTA);
        let resolver = network.register(2, QUOTA);
        let blocks = network.register(3, QUOTA);
        network.start();

        let (observer, mut finalized) =
            mpsc::channel(tranche_consensus::archive::FINALIZED_QUEUED_MAX);
        let view = View::of_start(&start);
        let launched = tranche_consensus::launch(
            &context,
            signer,
            namespace.as_bytes(),
            start,
            Arc::clone(&store),
            oracle.clone(),
            blocks,
            EngineChannels {
                votes,
                certificates,
                resolver,
            },
            observer,
            "simplex".to_string(),
        );
        let (mailbox, engines, store_failed) =
            (launched.mailbox, launched.engines, launched.store_failed);

        let shared = Arc::new(Shared {
            chain_id: chain_id.clone(),
            org: my_org,
            me,
            store,
            mailbox,
            view: RwLock::new(Arc::new(view)),
            events: tokio::sync::broadcast::channel(1024).0,
        });
        // Finalized blocks are already stored; publish them to readers.
        let publisher = Arc::clone(&shared);
        let mut peers_oracle = oracle.clone();
        context.child("publisher").spawn(move |_| async move {
            while let Some(f) = finalized.recv().await {
                if let Some(peers) = admission.update(&f.ledger) {
                    let _ = peers_oracle.track(f.block.header.height, peers);
                }
                if f.block.header.height % 100 == 0 || !f.block.txs.is_empty() {
                    tracing::info!(height = f.block.header.height, txs = f.block.txs.len(), root = %f.state_root, "finalized");
                }
                publisher.publish(f);
            }
        });
        let listener = tokio::net::TcpListener::from_std(api_listener)
            .expect("a nonblocking std listener converts");
        let api = tokio::spawn(api::serve(listener, tls, Arc::clone(&shared)));
        tracing::info!(api = %format!("{scheme_name}://{api_listen}"), p2p = %p2p_listen, "validator running");
        let stopped = tokio::select! {
            _ = shutdown_signal() => {
                tracing::info!("stopping on signal");
                // The state after the last stored block written down, so
                // the next start executes no block again.
                let store = Arc::clone(&shared.store);
                match tokio::task::spawn_blocking(move || store.flush()).await {
                    Ok(Ok(())) => tracing::info!("state checkpoint written"),
                    Ok(Err(e)) => tracing::warn!("the state checkpoint was not written: {e}"),
                    Err(e) => tracing::warn!("the state checkpoint was not written: {e}"),
                }
                None
            }
            _ = engines => {
                tracing::error!("the consensus orchestrator stopped");
                None
            }
            _ = api => {
                tracing::error!("the node API stopped");
                None
            }
            Ok(why) = store_failed => Some(why),
            why = disk::until_short_of_space(&data_dir, min_free_mb) => Some(why),
        };
        match stopped {
            Some(why) => {
                // Everything reported final is stored; a restart resumes
                // from the last block stored.
                tracing::error!("stopping: {why}");
                Err(NodeError::Stopped(why))
            }
            None => Ok(()),
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
