//! Keeps what a node has finalized through any crash: each finalized block,
//! its receipts, the state root after it and the indexes the node API
//! answers from (transactions by hash, transfers by height), committed
//! together in one redb write transaction; and, beside them, checkpoints of
//! the ledger record by record (see [`checkpoint`]).
//!
//! Invariants:
//! - Blocks are stored at consecutive heights from 1, each naming its
//!   predecessor's hash as its parent.
//! - The state database holds the ledger after some stored block (a
//!   checkpoint), or nothing; executing the stored blocks after it gives
//!   the state after each with the root stored for it. A checkpoint is
//!   only ever written for a block already stored.
//! - Everything read back is decoded with bounds; damaged storage is an error,
//!   never a panic.

mod archive;
pub mod checkpoint;

pub use archive::{Archive, MemoryArchive};
pub use checkpoint::CHECKPOINT_BLOCKS;

use checkpoint::Checkpoints;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use tranche_ledger::{Ledger, TransferRecord};
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
/// Stores written before the state had a database of its own kept it in
/// the chain's, in these tables (`state` and `state_tree` as the state's
/// database has them) and these entries of `meta`; the first open reads
/// them, writes them as a checkpoint and removes them.
mod legacy {
    use redb::TableDefinition;
    /// The records changed since the tree was stored.
    pub(crate) const DIRTY: TableDefinition<(&str, &[u8]), ()> =
        TableDefinition::new("state_dirty");
    /// The height of the stored tree's checkpoint.
    pub(crate) const TREE_HEIGHT: &str = "tree_height";
}

/// Each database's page cache (reads and the write buffer together).
/// redb's default is 1 GiB, which a restart fills by reading the state once
/// and then keeps for nothing: the state is in memory after it. Blocks,
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

pub(crate) fn storage_err<E: std::fmt::Display>(e: E) -> StorageError {
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
    /// The state's checkpoints, in a database of their own.
    checkpoints: Checkpoints,
}

/// Where the state's database of the chain store at `path` is: beside it,
/// `chain.redb` → `chain.state.redb`.
pub fn state_path(path: &Path) -> PathBuf {
    path.with_extension("state.redb")
}

fn open_database(path: &Path) -> Result<Database, StorageError> {
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(storage_err)
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
    /// Opens (creating if needed) the store at `path`, with its state's
    /// database beside it (see [`state_path`]).
    pub fn open(path: &Path) -> Result<ChainStore, StorageError> {
        let database = open_database(path)?;
        let checkpoints = Checkpoints::open(open_database(&state_path(path))?)?;
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
        }
        txn.commit().map_err(storage_err)?;
        Ok(ChainStore {
            db: database,
            checkpoints,
        })
    }

    /// The height of the last stored block; 0 before the first.
    pub fn finalized_height(&self) -> Result<u64, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(BLOCKS).map_err(storage_err)?;
        let last = table.last().map_err(storage_err)?;
        Ok(last.map_or(0, |(k, _)| k.value()))
    }

    /// Stores a finalized block with its receipts, the transfers it made
    /// and the certificate that finalized it (if it was finalized by its
    /// own, not by a descendant's), atomically; `ledger` is the state after
    /// it, which the next checkpoint writes. The block must follow the last
    /// one stored.
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
    /// transfers, state root and certificate, in one atomic write: one disk
    /// sync for all of them. The first must follow the last block stored,
    /// and each the one before. `ledger` is the state after the last: a
    /// checkpoint of it is asked for if one is due (see [`checkpoint`]).
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
        let txn = self.db.begin_write().map_err(storage_err)?;
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
            let mut meta = txn.open_table(META).map_err(storage_err)?;
            meta.insert(TIP, parent.0.as_slice()).map_err(storage_err)?;
        }
        txn.commit().map_err(storage_err)?;
        // Only once the blocks are on disk: a checkpoint is never ahead of
        // the chain.
        self.checkpoints.committed(height, ledger)
    }

    /// Writes a checkpoint of the state after the last block committed, if
    /// it has none, and returns once every checkpoint asked for is on disk:
    /// a restart then executes no block again.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.checkpoints.flush()
    }

    /// The height of the block whose state the last checkpoint holds; `None`
    /// if none was written.
    pub fn checkpoint_height(&self) -> Result<Option<u64>, StorageError> {
        self.checkpoints.height()
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

    /// The block at `height` as stored: its canonical encoding.
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let table = txn.open_table(BLOCKS).map_err(storage_err)?;
        Ok(table
            .get(height)
            .map_err(storage_err)?
            .map(|b| b.value().to_vec()))
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        self.block_bytes(height)?
            .map(|bytes| Block::from_bytes(&bytes))
            .transpose()
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
    /// `None` before the first block. It is the last checkpoint's state
    /// (`genesis` if none was written) with the blocks stored after it
    /// executed again, each checked against the root stored with it.
    pub fn load_ledger(&self, genesis: &Ledger) -> Result<Option<(u64, Ledger)>, StorageError> {
        let tip = self.finalized_height()?;
        if tip == 0 {
            return Ok(None);
        }
        let chain_id = genesis.chain_id();
        let checkpoint = match self.checkpoints.read(chain_id)? {
            Some(found) => Some(found),
            None => self.move_legacy_state(chain_id, tip)?,
        };
        let (from, mut ledger) = match checkpoint {
            Some((height, ledger, tree)) => {
                if height > tip {
                    return Err(StorageError::Damaged(format!(
                        "the state checkpoint is of block {height}, after the last block stored ({tip})"
                    )));
                }
                self.check_root(height, &ledger, "the state checkpoint")?;
                self.checkpoints.hold(height, ledger.clone(), tree);
                (height, ledger)
            }
            None => (0, genesis.clone()),
        };
        // A ledger read from the checkpoint reads its tree from it already;
        // one from genesis (or moved whole) does once a checkpoint holds it.
        ledger.state().keep_tree_in(self.checkpoints.tree_store());
        for height in from + 1..=tip {
            let block = self
                .block(height)?
                .ok_or_else(|| StorageError::Damaged(format!("block {height} is missing")))?;
            // Stored blocks were verified before they were finalized.
            tranche_block::execute(&mut ledger, &block);
            self.check_root(height, &ledger, "executing the stored blocks again")?;
        }
        Ok(Some((tip, ledger)))
    }

    /// From now on `ledger` (a ledger not read from this store, such as
    /// genesis) keeps in memory only the tree nodes this store's
    /// checkpoints do not hold yet, and reads the rest from them.
    pub fn keep_state_of(&self, ledger: &Ledger) {
        ledger.state().keep_tree_in(self.checkpoints.tree_store());
    }

    /// Fails unless `ledger`'s root is the root stored for block `height`.
    fn check_root(&self, height: u64, ledger: &Ledger, what: &str) -> Result<(), StorageError> {
        let stored = self.state_root(height)?.ok_or_else(|| {
            StorageError::Damaged(format!("the root of block {height} is missing"))
        })?;
        if ledger.state_root() != stored {
            return Err(StorageError::Damaged(format!(
                "{what} gives the root {} at block {height}, whose stored root is {stored}",
                ledger.state_root()
            )));
        }
        Ok(())
    }

    /// A store written before the state had a database of its own: reads
    /// the state from the chain's database (the ledger after block `tip`),
    /// writes it as the first checkpoint and removes it from there. `None`
    /// if the chain's database holds no state.
    fn move_legacy_state(
        &self,
        chain_id: &ChainId,
        tip: u64,
    ) -> Result<Option<(u64, Ledger, tranche_ledger::StateTree)>, StorageError> {
        let ledger = {
            let txn = self.db.begin_read().map_err(storage_err)?;
            let meta = txn.open_table(META).map_err(storage_err)?;
            if checkpoint::number(&meta, legacy::TREE_HEIGHT)?.is_none() {
                return Ok(None);
            }
            let version =
                checkpoint::number(&meta, checkpoint::TREE_VERSION)?.ok_or_else(|| {
                    StorageError::Damaged("the stored tree's version is missing".into())
                })?;
            let mut dirty = Vec::new();
            let table = txn.open_table(legacy::DIRTY).map_err(storage_err)?;
            for entry in table.iter().map_err(storage_err)? {
                let (key, _) = entry.map_err(storage_err)?;
                let (table, key) = key.value();
                dirty.push((table.to_string(), key.to_vec()));
            }
            checkpoint::read_state(chain_id, &txn, version, &dirty)?.0
        };
        self.check_root(tip, &ledger, "the state kept with the chain")?;
        let tree = self.checkpoints.write_now(tip, &ledger)?;
        let txn = self.db.begin_write().map_err(storage_err)?;
        txn.delete_table(checkpoint::STATE).map_err(storage_err)?;
        txn.delete_table(checkpoint::NODES).map_err(storage_err)?;
        txn.delete_table(legacy::DIRTY).map_err(storage_err)?;
        {
            let mut meta = txn.open_table(META).map_err(storage_err)?;
            meta.remove(legacy::TREE_HEIGHT).map_err(storage_err)?;
            meta.remove(checkpoint::TREE_VERSION).map_err(storage_err)?;
        }
        txn.commit().map_err(storage_err)?;
        Ok(Some((tip, ledger, tree)))
    }
}
