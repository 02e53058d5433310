//! Keeps what a node has finalized through any crash: each finalized block,
//! its receipts, the state root after it, the ledger record by record and
//! the indexes the node API answers from (transactions by hash, transfers
//! by height), committed together in one redb write transaction.
//!
//! Invariants:
//! - Blocks are stored at consecutive heights from 1, each naming its
//!   predecessor's hash as its parent.
//! - The `state` table holds the ledger after the latest block, and its root
//!   equals the root stored for that height; a commit writes the records its
//!   blocks changed (all of them the first time a process commits) with the
//!   blocks, or nothing (redb commits are atomic and durable).
//! - Everything read back is decoded with bounds; damaged storage is an error,
//!   never a panic.

mod archive;

pub use archive::{Archive, MemoryArchive};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use tranche_ledger::{Ledger, State, StateRows, StateTree, StateTreeNodes, TransferRecord};
use tranche_types::commonware_codec::{Copying, Encode, Read};
use tranche_types::{
    Block, ChainId, Hash, Receipt, Timestamp, TokenId, WalletAddress, BLOCK_TXS_MAX,
};

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
const ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("state_roots");
const HASHES: TableDefinition<&[u8], u64> = TableDefinition::new("block_hashes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Consensus certificates that finalized a block, by the block's height, in
/// the consensus engine's encoding: what lets a node prove to another that
/// a block is final.
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
/// Transaction hash to (height, position in block).
const TXS: TableDefinition<&[u8], (u64, u32)> = TableDefinition::new("transactions");
/// (height, sequence in block) to a transfer record, as JSON.
const TRANSFERS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("transfers");
/// The ledger after the last stored block, record by record: (table, key)
/// to value, each in the canonical encoding. A commit writes only the
/// records its blocks changed.
const STATE: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("state");
/// The state's Merkle tree, node by node (key to node), as of the last
/// checkpoint, so a restart reads it back rather than hashing every record
/// again. Written every [`TREE_CHECKPOINT_BLOCKS`] blocks, as far as it
/// changed: its churn per block is many times the records'.
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state_tree");
/// The records changed since the tree's checkpoint: a restart brings the
/// stored tree up to date from these alone.
const DIRTY: TableDefinition<(&str, &[u8]), ()> = TableDefinition::new("state_dirty");
/// Blocks between two checkpoints of the stored Merkle tree: a restart
/// re-hashes at most the records these many blocks changed.
pub const TREE_CHECKPOINT_BLOCKS: u64 = 64;

/// The store's page cache (reads and the write buffer together). redb's
/// default is 1 GiB, which a restart fills by reading the state once and
/// then keeps for nothing: the state is in memory after it. Blocks,
/// receipts and a commit's writes need a small fraction of this.
const CACHE_BYTES: usize = 128 * 1024 * 1024;

/// Which transfers a query wants: all of a token's, a wallet's (sent or
/// received), or both, within a range of heights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// Only this token.
    pub token: Option<TokenId>,
    /// Only transfers from or to this wallet.
    pub wallet: Option<WalletAddress>,
    /// From this height on (inclusive).
    pub from_height: u64,
    /// Up to this height (inclusive).
    pub to_height: u64,
}

impl TransferFilter {
    fn matches(&self, t: &TransferRecord) -> bool {
        t.matches(self.token.as_ref(), self.wallet.as_ref())
    }
}
/// The hash of the last block stored, so a commit need not decode it.
const TIP: &str = "tip";
/// The version of the stored Merkle tree (8 bytes, big-endian).
const TREE_VERSION: &str = "tree_version";
/// The height of the stored Merkle tree's checkpoint (8 bytes, big-endian).
const TREE_HEIGHT: &str = "tree_height";

/// A finalized block as [`ChainStore::commit_batch`] stores it.
#[derive(Clone, Copy, Debug)]
pub struct BlockRecord<'a> {
    /// The block.
    pub block: &'a Block,
    /// Its receipts, one per transaction.
    pub receipts: &'a [Receipt],
    /// The transfers it made.
    pub transfers: &'a [TransferRecord],
    /// The state root after it.
    pub state_root: Hash,
    /// The certificate that finalized it, if it was finalized by its own.
    pub certificate: Option<&'a [u8]>,
}

/// Why storage failed or refused.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed.
    #[error("chain storage error: {0}")]
    Db(String),
    /// A block does not follow the last one stored.
    #[error("block {height} does not follow: {reason}")]
    OutOfOrder {
        /// The block's height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// Something stored does not decode or agree with the rest.
    #[error("chain storage is damaged: {0}")]
    Damaged(String),
}

fn storage_err<E: std::fmt::Display>(e: E) -> StorageError {
    StorageError::Db(e.to_string())
}

/// A finalized block as the store keeps it: each part in the canonical
/// encoding, undecoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    /// The block.
    pub block: Vec<u8>,
    /// Its receipts (a count, then each).
    pub receipts: Vec<u8>,
    /// The state root after it.
    pub state_root: Option<Hash>,
    /// Each movement of units it made, in order.
    pub transfers: Vec<Vec<u8>>,
}

/// A node's finalized chain on disk.
#[derive(Debug)]
pub struct ChainStore {
    db: Database,
    /// What this process last wrote or read: the next commit writes only
    /// what differs from it.
    committed: std::sync::Mutex<Option<Committed>>,
}

/// The ledger the `state` table holds, and the tree the `state_tree` table
/// holds with the height of its checkpoint.
#[derive(Debug)]
struct Committed {
    ledger: Ledger,
    tree: StateTree,
    tree_height: u64,
}

/// A stored value in the canonical encoding, whole: `what` names it in the
/// error a damaged store gets.
fn decode<T: Read>(bytes: &[u8], cfg: &T::Cfg, what: &str) -> Result<T, StorageError> {
    let mut buf = Copying(bytes);
    let value =
        T::read_cfg(&mut buf, cfg).map_err(|e| StorageError::Damaged(format!("{what}: {e}")))?;
    if !buf.0.is_empty() {
        return Err(StorageError::Damaged(format!("{what}: trailing bytes")));
    }
    Ok(value)
}

fn decode_receipts(bytes: &[u8]) -> Result<Vec<Receipt>, StorageError> {
    decode(bytes, &((0..=BLOCK_TXS_MAX).into(), ()), "receipts")
}

fn decode_transfer(bytes: &[u8]) -> Result<TransferRecord, StorageError> {
    decode(bytes, &(), "a transfer record")
}

fn decode_root(bytes: &[u8]) -> Result<Hash, StorageError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StorageError::Damaged("a state root is not 32 bytes".into()))?;
    Ok(Hash(arr))
}

impl ChainStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<ChainStore, StorageError> {
        let database = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(storage_err)?;
        let txn = database.begin_write().map_err(storage_err)?;
        {
            // Create every table so readers never meet a missing one.
            txn.open_table(BLOCKS).map_err(storage_err)?;
            txn.open_table(RECEIPTS).map_err(storage_err)?;
            txn.open_table(ROOTS).map_err(storage_err)?;
            txn.open_table(HASHES).map_err(storage_err)?;
            txn.open_table(META).map_err(storage_err)?;
            txn.open_table(TXS).map_err(storage_err)?;
            txn.open_table(TRANSFERS).map_err(storage_err)?;
            txn.open_table(CERTIFICATES).map_err(storage_err)?;
            txn.open_table(STATE).map_err(storage_err)?;
            txn.open_table(NODES).map_err(storage_err)?;
            txn.open_table(DIRTY).map_err(storage_err)?;
        }
        txn.commit().map_err(storage_err)?;
        Ok(ChainStore {
            db: database,
            committed: std::sync::Mutex::new(None),
        })
    }

    /// The height of the last stored block; 0 before the first.
    pub fn finalized_height(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(BLOCKS).map_err(storage_err)?;
        let last = table.last().map_err(storage_err)?;
        Ok(last.map_or(0, |(k, _)| k.value()))
    }

    /// Stores a finalized block with its receipts, the transfers it made,
    /// the ledger after it and the certificate that finalized it (if it was
    /// finalized by its own, not by a descendant's), atomically. The block
    /// must follow the last one stored.
    pub fn commit(
        &self,
        block: &Block,
        receipts: &[Receipt],
        transfers: &[TransferRecord],
        ledger: &Ledger,
        certificate: Option<&[u8]>,
    ) -> Result<(), StorageError> {
        let record = BlockRecord {
            block,
            receipts,
            transfers,
            state_root: ledger.state_root(),
            certificate,
        };
        self.commit_batch(&[record], ledger)
    }

    /// Stores consecutive finalized blocks, each with its receipts,
    /// transfers, state root and certificate, and `ledger`, the state after
    /// the last, in one atomic write: one disk sync for all of them. The
    /// first must follow the last block stored, and each the one before.
    pub fn commit_batch(
        &self,
        records: &[BlockRecord<'_>],
        ledger: &Ledger,
    ) -> Result<(), StorageError> {
        let Some(last_record) = records.last() else {
            return Ok(());
        };
        let mut height = self.finalized_height()?;
        let mut parent = match height {
            0 => Hash::ZERO,
            h => match self.tip_hash()? {
                Some(hash) => hash,
                // A store written before the tip was kept.
                None => self
                    .block(h)?
                    .ok_or_else(|| StorageError::Damaged(format!("block {h} is missing")))?
                    .hash(),
            },
        };
        for r in records {
            let h = &r.block.header;
            if h.height != height + 1 {
                return Err(StorageError::OutOfOrder {
                    height: h.height,
                    reason: format!("the block before it is {height}"),
                });
            }
            if h.parent != parent {
                return Err(StorageError::OutOfOrder {
                    height: h.height,
                    reason: format!(
                        "its parent is {}, the block before it is {parent}",
                        h.parent
                    ),
                });
            }
            if r.receipts.len() != r.block.txs.len() {
                return Err(StorageError::OutOfOrder {
                    height: h.height,
                    reason: format!(
                        "it has {} transactions but {} receipts",
                        r.block.txs.len(),
                        r.receipts.len()
                    ),
                });
            }
            height = h.height;
            parent = r.block.hash();
        }
        if ledger.state_root() != last_record.state_root {
            return Err(StorageError::OutOfOrder {
                height,
                reason: "the ledger given is not the state after it".into(),
            });
        }
        // What changed since the state on disk; everything, replacing what
        // is there, when this process has not seen that state.
        let mut committed = self.committed.lock().unwrap_or_else(|e| e.into_inner());
        let (rows, whole) = match committed.as_ref() {
            Some(c) => (ledger.state().changes_since(c.ledger.state()), false),
            None => (ledger.state().rows(), true),
        };
        let checkpoint = committed
            .as_ref()
            .is_none_or(|c| height >= c.tree_height + TREE_CHECKPOINT_BLOCKS);
        let tree = checkpoint.then(|| ledger.state().tree());
        let nodes = match (&tree, committed.as_ref()) {
            (Some(now), Some(c)) => now.changes_since(&c.tree),
            (Some(now), None) => now.rows(),
            (None, _) => Vec::new(),
        };
        let txn = self.db.begin_write().map_err(storage_err)?;
        if whole {
            txn.delete_table(STATE).map_err(storage_err)?;
            txn.delete_table(NODES).map_err(storage_err)?;
        }
        if checkpoint {
            txn.delete_table(DIRTY).map_err(storage_err)?;
        }
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(storage_err)?;
            let mut receipts = txn.open_table(RECEIPTS).map_err(storage_err)?;
            let mut roots = txn.open_table(ROOTS).map_err(storage_err)?;
            let mut hashes = txn.open_table(HASHES).map_err(storage_err)?;
            let mut txs = txn.open_table(TXS).map_err(storage_err)?;
            let mut certificates = txn.open_table(CERTIFICATES).map_err(storage_err)?;
            let mut transfers = txn.open_table(TRANSFERS).map_err(storage_err)?;
            for r in records {
                let height = r.block.header.height;
                blocks
                    .insert(height, r.block.encode().as_ref())
                    .map_err(storage_err)?;
                receipts
                    .insert(height, r.receipts.to_vec().encode().as_ref())
                    .map_err(storage_err)?;
                roots
                    .insert(height, r.state_root.0.as_slice())
                    .map_err(storage_err)?;
                hashes
                    .insert(r.block.hash().0.as_slice(), height)
                    .map_err(storage_err)?;
                // The receipts name each transaction's hash and place.
                for receipt in r.receipts {
                    txs.insert(receipt.tx_hash.0.as_slice(), (height, receipt.index))
                        .map_err(storage_err)?;
                }
                if let Some(certificate) = r.certificate {
                    certificates
                        .insert(height, certificate)
                        .map_err(storage_err)?;
                }
                for (seq, t) in r.transfers.iter().enumerate() {
                    let seq = u32::try_from(seq).expect("blocks make fewer than 2^32 transfers");
                    transfers
                        .insert((height, seq), t.encode().as_ref())
                        .map_err(storage_err)?;
                }
            }
            let mut state = txn.open_table(STATE).map_err(storage_err)?;
            for row in &rows {
                let key = (row.table, row.key.as_slice());
                match &row.value {
                    Some(value) => state.insert(key, value.as_slice()).map(|_| ()),
                    None => state.remove(key).map(|_| ()),
                }
                .map_err(storage_err)?;
            }
            let mut meta = txn.open_table(META).map_err(storage_err)?;
            meta.insert(TIP, parent.0.as_slice()).map_err(storage_err)?;
            if let Some(tree) = &tree {
                let mut stored = txn.open_table(NODES).map_err(storage_err)?;
                for (key, node) in &nodes {
                    match node {
                        Some(node) => stored.insert(key.as_slice(), node.as_slice()).map(|_| ()),
                        None => stored.remove(key.as_slice()).map(|_| ()),
                    }
                    .map_err(storage_err)?;
                }
                meta.insert(TREE_VERSION, tree.version().to_be_bytes().as_slice())
                    .map_err(storage_err)?;
                meta.insert(TREE_HEIGHT, height.to_be_bytes().as_slice())
                    .map_err(storage_err)?;
            } else {
                let mut dirty = txn.open_table(DIRTY).map_err(storage_err)?;
                for row in &rows {
                    dirty
                        .insert((row.table, row.key.as_slice()), ())
                        .map_err(storage_err)?;
                }
            }
        }
        txn.commit().map_err(storage_err)?;
        // Only once it is on disk.
        *committed = Some(match (committed.take(), tree) {
            (_, Some(tree)) => Committed {
                ledger: ledger.clone(),
                tree,
                tree_height: height,
            },
            (Some(c), None) => Committed {
                ledger: ledger.clone(),
                ..c
            },
            (None, None) => unreachable!("a first commit is a checkpoint"),
        });
        Ok(())
    }

    /// The hash of the last block stored, if the store keeps it.
    fn tip_hash(&self) -> Result<Option<Hash>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(META).map_err(storage_err)?;
        let Some(bytes) = table.get(TIP).map_err(storage_err)? else {
            return Ok(None);
        };
        <[u8; 32]>::try_from(bytes.value())
            .map(|h| Some(Hash(h)))
            .map_err(|_| StorageError::Damaged("the stored tip hash is not 32 bytes".into()))
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(BLOCKS).map_err(storage_err)?;
        let Some(bytes) = table.get(height).map_err(storage_err)? else {
            return Ok(None);
        };
        Block::from_bytes(bytes.value())
            .map(Some)
            .map_err(|e| StorageError::Damaged(e.to_string()))
    }

    /// The block at `height` as stored, undecoded, with its receipts, state
    /// root and movements, read in one transaction: what a follower's binary
    /// read serves as it is.
    pub fn block_parts(&self, height: u64) -> Result<Option<StoredBlock>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let blocks = txn.open_table(BLOCKS).map_err(storage_err)?;
        let Some(block) = blocks.get(height).map_err(storage_err)? else {
            return Ok(None);
        };
        let receipts = txn.open_table(RECEIPTS).map_err(storage_err)?;
        let receipts = receipts.get(height).map_err(storage_err)?.ok_or_else(|| {
            StorageError::Damaged(format!("block {height}'s receipts are missing"))
        })?;
        let roots = txn.open_table(ROOTS).map_err(storage_err)?;
        let state_root = roots
            .get(height)
            .map_err(storage_err)?
            .map(|b| decode_root(b.value()))
            .transpose()?;
        let table = txn.open_table(TRANSFERS).map_err(storage_err)?;
        let mut transfers = Vec::new();
        for entry in table
            .range((height, 0)..=(height, u32::MAX))
            .map_err(storage_err)?
        {
            let (_, value) = entry.map_err(storage_err)?;
            transfers.push(value.value().to_vec());
        }
        Ok(Some(StoredBlock {
            block: block.value().to_vec(),
            receipts: receipts.value().to_vec(),
            state_root,
            transfers,
        }))
    }

    /// The certificate that finalized the block at `height`, if it had one
    /// of its own.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(CERTIFICATES).map_err(storage_err)?;
        Ok(table
            .get(height)
            .map_err(storage_err)?
            .map(|v| v.value().to_vec()))
    }

    /// The block with this hash.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
        let height = {
            let txn = self.db.begin_read().map_err(storage_err)?;
            let table = txn.open_table(HASHES).map_err(storage_err)?;
            table
                .get(hash.0.as_slice())
                .map_err(storage_err)?
                .map(|h| h.value())
        };
        match height {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }

    /// Where a finalized transaction is: its block's height and its position.
    pub fn transaction(&self, hash: &Hash) -> Result<Option<(u64, u32)>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(TXS).map_err(storage_err)?;
        let got = table.get(hash.0.as_slice()).map_err(storage_err)?;
        Ok(got.map(|v| v.value()))
    }

    /// Finalized transfers matching `filter`, oldest first, at most `limit`.
    pub fn transfers(
        &self,
        filter: &TransferFilter,
        limit: usize,
    ) -> Result<Vec<TransferRecord>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(TRANSFERS).map_err(storage_err)?;
        let range = table
            .range((filter.from_height, 0)..=(filter.to_height, u32::MAX))
            .map_err(storage_err)?;
        let mut found = Vec::new();
        for entry in range {
            let (_, value) = entry.map_err(storage_err)?;
            let record = decode_transfer(value.value())?;
            if filter.matches(&record) {
                found.push(record);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The first height whose block's time is at or after `time`; one past
    /// the last block if none is. Block times increase with height.
    pub fn height_at(&self, time: Timestamp) -> Result<u64, StorageError> {
        let (mut lo, mut hi) = (1, self.finalized_height()? + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let block = self
                .block(mid)?
                .ok_or_else(|| StorageError::Damaged(format!("block {mid} is missing")))?;
            if block.header.time < time {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The receipts of the block at `height`.
    pub fn receipts(&self, height: u64) -> Result<Option<Vec<Receipt>>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(RECEIPTS).map_err(storage_err)?;
        let got = table.get(height).map_err(storage_err)?;
        got.map(|b| decode_receipts(b.value())).transpose()
    }

    /// The state root after the block at `height`.
    pub fn state_root(&self, height: u64) -> Result<Option<Hash>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(ROOTS).map_err(storage_err)?;
        let got = table.get(height).map_err(storage_err)?;
        got.map(|b| decode_root(b.value())).transpose()
    }

    /// The ledger after the last stored block, and that block's height;
    /// `None` before the first block. Its root is checked against the root
    /// stored with the block.
    pub fn load_ledger(&self, chain_id: &ChainId) -> Result<Option<(u64, Ledger)>, StorageError> {
        let height = self.finalized_height()?;
        if height == 0 {
            return Ok(None);
        }
        let (ledger, tree, tree_height) = {
            let txn = self.db.begin_read().map_err(storage_err)?;
            // Decoded as the store iterates, without a copy of every row
            // first: at a million holders the copies were gigabytes. The
            // records and the tree's nodes are read at once, on two
            // threads, from the same snapshot.
            let (state, tree) = std::thread::scope(|s| {
                let tree = s.spawn(|| read_tree(&txn));
                let state = read_state(&txn);
                (state, tree.join())
            });
            let state = state?;
            let (stored, tree_height) =
                tree.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            let dirty = txn.open_table(DIRTY).map_err(storage_err)?;
            let mut changed = Vec::new();
            for entry in dirty.iter().map_err(storage_err)? {
                let (key, _) = entry.map_err(storage_err)?;
                let (table, key) = key.value();
                changed.push((table.to_string(), key.to_vec()));
            }
            let (ledger, tree) = Ledger::from_parts(
                chain_id.clone(),
                state,
                stored,
                changed.iter().map(|(t, k)| (t.as_str(), k.as_slice())),
            )
            .map_err(|e| StorageError::Damaged(e.to_string()))?;
            (ledger, tree, tree_height)
        };
        let stored = self.state_root(height)?.ok_or_else(|| {
            StorageError::Damaged(format!("the root of block {height} is missing"))
        })?;
        if ledger.state_root() != stored {
            return Err(StorageError::Damaged(format!(
                "the stored state's root {} is not block {height}'s root {stored}",
                ledger.state_root()
            )));
        }
        *self.committed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Committed {
            ledger: ledger.clone(),
            tree,
            tree_height,
        });
        Ok(Some((height, ledger)))
    }
}

/// Rows are read in two passes, every other row first, then the rest. The
/// state's persistent maps split a full leaf in two halves, and keys
/// inserted in order never return to the left half: read in the store's
/// order the maps came out with leaves half full (149 bytes a 64-byte
/// entry). The second pass fills the first pass's half-full leaves
/// instead (74 bytes an entry), for a second walk of the store.
const PASSES: usize = 2;

/// The state's records as `txn` sees them, decoded.
fn read_state(txn: &redb::ReadTransaction) -> Result<State, StorageError> {
    let damaged = |e: tranche_types::DecodeError| StorageError::Damaged(e.to_string());
    let table = txn.open_table(STATE).map_err(storage_err)?;
    let mut state = StateRows::default();
    for pass in 0..PASSES {
        for entry in table
            .iter()
            .map_err(storage_err)?
            .skip(pass)
            .step_by(PASSES)
        {
            let (key, value) = entry.map_err(storage_err)?;
            let (table, key) = key.value();
            state.row(table, key, value.value()).map_err(damaged)?;
        }
    }
    state.finish().map_err(damaged)
}

/// The Merkle tree's nodes as `txn` sees them, decoded, with the height of
/// the block they are the tree of.
fn read_tree(txn: &redb::ReadTransaction) -> Result<(StateTree, u64), StorageError> {
    let damaged = |e: tranche_types::DecodeError| StorageError::Damaged(e.to_string());
    let tree = txn.open_table(NODES).map_err(storage_err)?;
    let mut nodes = StateTreeNodes::default();
    for pass in 0..PASSES {
        for entry in tree.iter().map_err(storage_err)?.skip(pass).step_by(PASSES) {
            let (key, node) = entry.map_err(storage_err)?;
            nodes.node(key.value(), node.value()).map_err(damaged)?;
        }
    }
    let meta = txn.open_table(META).map_err(storage_err)?;
    let number = |name: &str| -> Result<u64, StorageError> {
        let got = meta
            .get(name)
            .map_err(storage_err)?
            .ok_or_else(|| StorageError::Damaged(format!("the state's {name} is missing")))?;
        <[u8; 8]>::try_from(got.value())
            .map(u64::from_be_bytes)
            .map_err(|_| StorageError::Damaged(format!("the state's {name} is not 8 bytes")))
    };
    let (version, tree_height) = (number(TREE_VERSION)?, number(TREE_HEIGHT)?);
    Ok((nodes.finish(version).map_err(damaged)?, tree_height))
}
