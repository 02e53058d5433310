//! The ledger's state kept beside the chain, in a database of its own,
//! checkpoint by checkpoint: every [`CHECKPOINT_BLOCKS`] blocks a thread of
//! its own writes the records and Merkle tree nodes that changed since the
//! last checkpoint, all of them with the checkpoint's height in one redb
//! transaction.
//!
//! Why not with each block: at a hundred thousand holders a block's records
//! and tree nodes land on as many random pages of a large table, and
//! writing them made each block's commit (which a node waits for before it
//! reports the block final) grow with the number of holders. The blocks
//! alone are what must be durable when reported; the state after them is
//! a function of the blocks, so a restart reads the last checkpoint and
//! executes the blocks stored after it, checking each block's stored root.

use crate::{storage_err, StorageError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use tranche_ledger::{Ledger, State, StateRows, StateTree, StateTreeNodes, TreeStore};
use tranche_types::ChainId;

/// The ledger's records: (table, key) to value, each in the canonical
/// encoding, as of the checkpoint.
pub(crate) const STATE: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("state");
/// The state's Merkle tree, node by node (key to node), as of the
/// checkpoint: a restart reads it back rather than hashing every record.
pub(crate) const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state_tree");
/// The checkpoint's height and the tree's version.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The height of the block the checkpoint is the state after (8 bytes,
/// big-endian).
const HEIGHT: &str = "height";
/// The version of the stored Merkle tree (8 bytes, big-endian).
pub(crate) const TREE_VERSION: &str = "tree_version";

/// Blocks between two checkpoints: a restart executes at most about these
/// many blocks again (more only if checkpoints fall behind the chain).
pub const CHECKPOINT_BLOCKS: u64 = 64;

/// The state as a checkpoint holds it, with the tree it was written with:
/// the next checkpoint writes only what differs from it.
struct Held {
    ledger: Ledger,
    tree: StateTree,
    /// The tree version of the checkpoint written before this one in this
    /// process (`None`: none, or not known): the nodes gone from `tree` that
    /// can be in the database are of that version or earlier.
    before: Option<u64>,
}

/// The Merkle tree of the last checkpoint, as the ledger reads the nodes
/// it does not hold in memory: from a snapshot of the state's database
/// taken after that checkpoint was written.
pub(crate) struct StoredTree {
    view: RwLock<Option<View>>,
    deleted_through: Mutex<Option<u64>>,
}

struct View {
    nodes: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    checkpoint: (u64, [u8; 32]),
}

impl StoredTree {
    /// Reads from `db` from now on, whose checkpoint is the tree at version
    /// `version` (its root read from the nodes).
    fn refresh(&self, db: &Database, version: u64) -> Result<(), StorageError> {
        let txn = db.begin_read().map_err(storage_err)?;
        let nodes = txn.open_table(NODES).map_err(storage_err)?;
        let get = |key: &[u8]| -> Result<Option<Vec<u8>>, String> {
            let got = nodes.get(key).map_err(|e| e.to_string())?;
            Ok(got.map(|v| v.value().to_vec()))
        };
        let root = tranche_ledger::stored_root(get, version)
            .map_err(StorageError::Damaged)?
            .ok_or_else(|| {
                StorageError::Damaged(format!(
                    "the state checkpoint has no tree root at version {version}"
                ))
            })?;
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Some(View {
            nodes,
            checkpoint: (version, root),
        });
        Ok(())
    }
}

impl TreeStore for StoredTree {
    fn node(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        let Some(view) = view.as_ref() else {
            return Ok(None);
        };
        let got = view.nodes.get(key).map_err(|e| e.to_string())?;
        Ok(got.map(|v| v.value().to_vec()))
    }

    fn checkpoint(&self) -> Option<(u64, [u8; 32])> {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        view.as_ref().map(|v| v.checkpoint)
    }

    fn deleted_through(&self) -> Option<u64> {
        *self
            .deleted_through
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// What the committing thread and the checkpoint thread share.
#[derive(Default)]
struct Slot {
    /// The state the database holds, unless a write is under way (the
    /// writer has it) or this process has not read it (the next checkpoint
    /// is then written whole).
    held: Option<Held>,
    /// The next checkpoint to write: a height, the ledger after it, and
    /// whether it is the last before the store closes.
    pending: Option<(u64, Ledger, bool)>,
    /// The height of the last checkpoint asked for (or read).
    requested: u64,
    /// The last block committed and the ledger after it, for [`Checkpoints::flush`].
    latest: Option<(u64, Ledger)>,
    /// A write is under way.
    busy: bool,
    /// Why the last write failed: the database is no longer written.
    failed: Option<String>,
    /// The store is being closed.
    stop: bool,
}

struct Shared {
    slot: Mutex<Slot>,
    /// Signalled when there is work, or the store closes.
    work: Condvar,
    /// Signalled when a write ends.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The state's database and the thread that writes its checkpoints.
pub(crate) struct Checkpoints {
    db: Arc<Database>,
    tree: Arc<StoredTree>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.shared.lock();
        f.debug_struct("Checkpoints")
            .field("requested", &slot.requested)
            .field("busy", &slot.busy)
            .field("failed", &slot.failed)
            .finish_non_exhaustive()
    }
}

impl Checkpoints {
    /// Opens (creating if needed) the state's database `db` and starts its
    /// writer.
    pub(crate) fn open(db: Database) -> Result<Checkpoints, StorageError> {
        let txn = db.begin_write().map_err(storage_err)?;
        {
            txn.open_table(STATE).map_err(storage_err)?;
            txn.open_table(NODES).map_err(storage_err)?;
            txn.open_table(META).map_err(storage_err)?;
        }
        txn.commit().map_err(storage_err)?;
        let tree = Arc::new(StoredTree {
            view: RwLock::new(None),
            deleted_through: Mutex::new(None),
        });
        let version = {
            let txn = db.begin_read().map_err(storage_err)?;
            let meta = txn.open_table(META).map_err(storage_err)?;
            number(&meta, HEIGHT)?
                .is_some()
                .then(|| number(&meta, TREE_VERSION))
                .transpose()?
                .flatten()
        };
        if let Some(version) = version {
            tree.refresh(&db, version)?;
        }
        let db = Arc::new(db);
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("state-checkpoints".into())
            .spawn({
                let (db, tree, shared) = (Arc::clone(&db), Arc::clone(&tree), Arc::clone(&shared));
                move || writer(&db, &tree, &shared)
            })
            .map_err(|e| StorageError::Db(format!("cannot start the checkpoint writer: {e}")))?;
        Ok(Checkpoints {
            db,
            tree,
            shared,
            thread: Some(thread),
        })
    }

    /// The last checkpoint: its height, the ledger and the tree as stored;
    /// `None` if none was written.
    pub(crate) fn read(
        &self,
        chain_id: &ChainId,
    ) -> Result<Option<(u64, Ledger, StateTree)>, StorageError> {
        // No checkpoint is written while this one is read: the tree's
        // nodes are read from the snapshot the writer takes after it.
        let mut slot = self.shared.lock();
        while slot.busy {
            slot = self
                .shared
                .done
                .wait(slot)
                .unwrap_or_else(|e| e.into_inner());
        }
        let txn = self.db.begin_read().map_err(storage_err)?;
        let meta = txn.open_table(META).map_err(storage_err)?;
        let Some(height) = number(&meta, HEIGHT)? else {
            return Ok(None);
        };
        let version = number(&meta, TREE_VERSION)?.ok_or_else(|| {
            StorageError::Damaged("the state checkpoint's tree version is missing".into())
        })?;
        if self.tree.checkpoint().map(|(v, _)| v) != Some(version) {
            return Err(StorageError::Damaged(
                "the state checkpoint's tree is not the one its snapshot holds".into(),
            ));
        }
        let records = read_records(&txn)?;
        let store: Arc<dyn TreeStore> = self.tree.clone();
        let (ledger, tree) = Ledger::in_store(chain_id.clone(), records, store).map_err(damaged)?;
        drop(slot);
        Ok(Some((height, ledger, tree)))
    }

    /// Where a ledger reads the tree nodes its checkpoints hold.
    pub(crate) fn tree_store(&self) -> Arc<dyn TreeStore> {
        self.tree.clone()
    }

    /// The height of the last checkpoint written, if any.
    pub(crate) fn height(&self) -> Result<Option<u64>, StorageError> {
        let txn = self.db.begin_read().map_err(storage_err)?;
        let meta = txn.open_table(META).map_err(storage_err)?;
        number(&meta, HEIGHT)
    }

    /// From now on, checkpoints are written as changes to `ledger`, the
    /// state the database holds after block `height`.
    pub(crate) fn hold(&self, height: u64, ledger: Ledger, tree: StateTree) {
        let mut slot = self.shared.lock();
        slot.held = Some(Held {
            ledger,
            tree,
            before: None,
        });
        slot.requested = height;
    }

    /// Notes that block `height` is committed with `ledger` the state after
    /// it, and asks for a checkpoint of it if one is due. Fails if a
    /// checkpoint could not be written.
    pub(crate) fn committed(&self, height: u64, ledger: &Ledger) -> Result<(), StorageError> {
        // A ledger not read from this store (genesis, or one built by a
        // test or bench) reads its tree from the checkpoints from now on,
        // so that each checkpoint writes only what the last one lacks.
        ledger.state().keep_tree_in(self.tree_store());
        let mut slot = self.shared.lock();
        if let Some(why) = &slot.failed {
            return Err(StorageError::Db(why.clone()));
        }
        slot.latest = Some((height, ledger.clone()));
        if slot.requested == 0 || height >= slot.requested + CHECKPOINT_BLOCKS {
            slot.pending = Some((height, ledger.clone(), false));
            slot.requested = height;
            self.shared.work.notify_one();
        }
        Ok(())
    }

    /// Writes the last checkpoint of the last block committed, and returns
    /// once every checkpoint asked for is written. The last checkpoint also
    /// deletes the tree nodes gone since the one before: a checkpoint of
    /// the same block already asked for, not the last, leaves them.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        let mut slot = self.shared.lock();
        if let Some((height, ledger)) = slot.latest.take() {
            if height >= slot.requested {
                slot.pending = Some((height, ledger, true));
                slot.requested = height;
                self.shared.work.notify_one();
            }
        }
        while (slot.busy || slot.pending.is_some()) && slot.failed.is_none() {
            slot = self
                .shared
                .done
                .wait(slot)
                .unwrap_or_else(|e| e.into_inner());
        }
        match &slot.failed {
            Some(why) => Err(StorageError::Db(why.clone())),
            None => Ok(()),
        }
    }

    /// Writes `ledger`, the state after block `height`, whole as a
    /// checkpoint now, on the calling thread; the tree it wrote, for
    /// [`Self::hold`].
    pub(crate) fn write_now(
        &self,
        height: u64,
        ledger: &Ledger,
    ) -> Result<StateTree, StorageError> {
        write(&self.db, &self.tree, None, height, ledger, false)
    }
}

impl Drop for Checkpoints {
    /// Lets the writer finish what it was asked for, then stops it.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            // A writer that panicked has nothing more to say here.
            let _ = thread.join();
        }
    }
}

/// The checkpoint writer's loop: writes each checkpoint asked for, the
/// latest when several were asked for while it wrote, until the store
/// closes or a write fails.
fn writer(db: &Database, tree: &Arc<StoredTree>, shared: &Shared) {
    loop {
        let (height, ledger, last, held) = {
            let mut slot = shared.lock();
            loop {
                if let Some((height, ledger, last)) = slot.pending.take() {
                    slot.busy = true;
                    break (height, ledger, last, slot.held.take());
                }
                if slot.stop {
                    return;
                }
                slot = shared.work.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
        };
        // A panic here is a broken invariant; it must stop the commits
        // (they fail from now on) rather than leave a flush waiting.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write(db, tree, held.as_ref(), height, &ledger, last)
        }))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(StorageError::Db(format!(
                "the checkpoint writer failed: {why}"
            )))
        });
        let mut slot = shared.lock();
        slot.busy = false;
        match written {
            Ok(tree) => {
                slot.held = Some(Held {
                    ledger,
                    tree,
                    before: held.map(|h| h.tree.version()),
                });
            }
            Err(e) => {
                slot.failed = Some(format!(
                    "writing the state checkpoint of block {height}: {e}"
                ));
            }
        }
        let failed = slot.failed.is_some();
        shared.done.notify_all();
        if failed {
            return;
        }
    }
}

/// Writes `ledger`, the state after block `height`, over `held` (the state
/// the database holds; everything, replacing what is there, without it),
/// and returns the tree it wrote. The tree nodes `held` no longer had are
/// deleted now, one checkpoint late (a copy of the state from before this
/// one may still read them); `last` deletes those this one no longer has
/// too. Only gone nodes an earlier checkpoint can have written are deleted:
/// a node gone by a checkpoint's tree and written by none before it is not
/// in the database (most gone nodes are such: a node written by one block
/// and replaced by the next). Once written, the ledger reads its tree
/// nodes from this checkpoint.
fn write(
    db: &Database,
    stored: &Arc<StoredTree>,
    held: Option<&Held>,
    height: u64,
    ledger: &Ledger,
    last: bool,
) -> Result<StateTree, StorageError> {
    let tree = ledger.state().tree();
    let rows = match held {
        Some(h) => ledger.state().changes_since(h.ledger.state()),
        None if tree.whole() => ledger.state().rows(),
        None => {
            return Err(StorageError::Db(
                "a state whose tree is partly in another store cannot be written whole".into(),
            ))
        }
    };
    let ours: Arc<dyn TreeStore> = stored.clone();
    if !tree.whole() && !tree.kept_in(&ours) {
        return Err(StorageError::Db(
            "the state's tree reads its nodes from another store".into(),
        ));
    }
    let mut nodes = tree.unstored();
    // Without `held` the nodes are written whole, and none gone is there.
    if let Some(h) = held {
        nodes.extend(h.tree.gone(h.before));
        if last {
            nodes.extend(tree.gone(Some(h.tree.version())));
        }
    }
    let txn = db.begin_write().map_err(storage_err)?;
    if held.is_none() {
        txn.delete_table(STATE).map_err(storage_err)?;
        txn.delete_table(NODES).map_err(storage_err)?;
    }
    {
        let mut state = txn.open_table(STATE).map_err(storage_err)?;
        for row in &rows {
            let key = (row.table, row.key.as_slice());
            match &row.value {
                Some(value) => state.insert(key, value.as_slice()).map(|_| ()),
                None => state.remove(key).map(|_| ()),
            }
            .map_err(storage_err)?;
        }
        let mut stored = txn.open_table(NODES).map_err(storage_err)?;
        for (key, node) in &nodes {
            match node {
                Some(node) => stored.insert(key.as_slice(), node.as_slice()).map(|_| ()),
                None => stored.remove(key.as_slice()).map(|_| ()),
            }
            .map_err(storage_err)?;
        }
        let mut meta = txn.open_table(META).map_err(storage_err)?;
        meta.insert(HEIGHT, height.to_be_bytes().as_slice())
            .map_err(storage_err)?;
        meta.insert(TREE_VERSION, tree.version().to_be_bytes().as_slice())
            .map_err(storage_err)?;
    }
    txn.commit().map_err(storage_err)?;
    stored.refresh(db, tree.version())?;
    let deleted = if last {
        Some(tree.version())
    } else {
        held.map(|h| h.tree.version())
    };
    if deleted.is_some() {
        *stored
            .deleted_through
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = deleted;
    }
    Ok(tree)
}

/// The number stored under `name`, if any.
pub(crate) fn number(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<u64>, StorageError> {
    let Some(got) = meta.get(name).map_err(storage_err)? else {
        return Ok(None);
    };
    <[u8; 8]>::try_from(got.value())
        .map(|b| Some(u64::from_be_bytes(b)))
        .map_err(|_| StorageError::Damaged(format!("the state's {name} is not 8 bytes")))
}

/// Rows are read in two passes, every other row first, then the rest. The
/// state's persistent maps split a full leaf in two halves, and keys
/// inserted in order never return to the left half: read in the store's
/// order the maps came out with leaves half full (149 bytes a 64-byte
/// entry). The second pass fills the first pass's half-full leaves
/// instead (74 bytes an entry), for a second walk of the store.
const PASSES: usize = 2;

/// The ledger whose records `txn`'s `state` table holds, with the Merkle
/// tree its `state_tree` table holds at `version`, brought up to date from the records `dirty` names
/// (changed since the tree was stored). Records and nodes are read at
/// once, on two threads; each is decoded as the store iterates, without a
/// copy of every row first (at a million holders the copies were
/// gigabytes).
pub(crate) fn read_state(
    chain_id: &ChainId,
    txn: &redb::ReadTransaction,
    version: u64,
    dirty: &[(String, Vec<u8>)],
) -> Result<(Ledger, StateTree), StorageError> {
    let (records, tree) = std::thread::scope(|s| {
        let tree = s.spawn(|| read_nodes(txn, version));
        let records = read_records(txn);
        (records, tree.join())
    });
    let records = records?;
    let tree = tree.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    Ledger::from_parts(
        chain_id.clone(),
        records,
        tree,
        dirty.iter().map(|(t, k)| (t.as_str(), k.as_slice())),
    )
    .map_err(|e| StorageError::Damaged(e.to_string()))
}

fn damaged(e: tranche_types::DecodeError) -> StorageError {
    StorageError::Damaged(e.to_string())
}

/// Calls `each` with every entry of `table`, in [`PASSES`] passes.
fn in_passes<K: redb::Key + 'static, V: redb::Value + 'static>(
    table: &redb::ReadOnlyTable<K, V>,
    mut each: impl FnMut(redb::AccessGuard<'_, K>, redb::AccessGuard<'_, V>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    for pass in 0..PASSES {
        for entry in table
            .iter()
            .map_err(storage_err)?
            .skip(pass)
            .step_by(PASSES)
        {
            let (key, value) = entry.map_err(storage_err)?;
            each(key, value)?;
        }
    }
    Ok(())
}

/// The table name the records are split at: the records of the tables
/// before it are read on one thread, the rest on another. At a million
/// holders about three million rows fall on each side (balances and
/// claims; wallets, identity holdings and the rest).
const SPLIT_AT: &str = "identity";

fn read_records(txn: &redb::ReadTransaction) -> Result<State, StorageError> {
    let table = txn.open_table(STATE).map_err(storage_err)?;
    let split: (&str, &[u8]) = (SPLIT_AT, &[]);
    let read = |first: bool| -> Result<StateRows, StorageError> {
        let mut state = StateRows::default();
        for pass in 0..PASSES {
            let rows = if first {
                table.range(..split)
            } else {
                table.range(split..)
            };
            for entry in rows.map_err(storage_err)?.skip(pass).step_by(PASSES) {
                let (key, value) = entry.map_err(storage_err)?;
                let (name, key) = key.value();
                state.row(name, key, value.value()).map_err(damaged)?;
            }
        }
        Ok(state)
    };
    let (first, rest) = std::thread::scope(|s| {
        let first = s.spawn(|| read(true));
        let rest = read(false);
        (first.join(), rest)
    });
    let first = first.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    first.merge(rest?).finish().map_err(damaged)
}

fn read_nodes(txn: &redb::ReadTransaction, version: u64) -> Result<StateTree, StorageError> {
    let table = txn.open_table(NODES).map_err(storage_err)?;
    let mut nodes = StateTreeNodes::default();
    in_passes(&table, |key, node| {
        nodes.node(key.value(), node.value()).map_err(damaged)
    })?;
    nodes.finish(version).map_err(damaged)
}
