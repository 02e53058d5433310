//! The ledger is stored record by record, checkpoint by checkpoint: each
//! checkpoint writes what changed since the last — removals included — and
//! a reopened store reads back the last checkpoint and executes the blocks
//! stored after it, giving exactly the state it was given, with the same
//! root.

use tranche_ledger::Ledger;
use tranche_storage::{ChainStore, StorageError, CHECKPOINT_BLOCKS};
use tranche_testkit::world::{id, Person, World, CHAIN, START_MS};
use tranche_types::*;

/// Two onboarded people holding token `T`, 600 and 400.
fn two_holders() -> (World, Person, Person) {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "KR");
    w.tokenize("T", &[(&a, 600), (&b, 400)]);
    (w, a, b)
}

/// A chain being stored: the world's ledger is the state after `height`.
struct Chain {
    w: World,
    height: u64,
    parent: Hash,
}

impl Chain {
    /// Block `height + 1` holding `txs`, executed on the world's ledger
    /// (each must apply), with its receipts.
    fn execute(&mut self, txs: Vec<SignedTransaction>) -> (Block, Vec<Receipt>) {
        self.height += 1;
        let block = Block::new(
            CHAIN.parse().unwrap(),
            self.height,
            self.parent,
            Timestamp(START_MS + self.height),
            tranche_testkit::key(1).public_key(),
            self.w.ledger.state_root(),
            txs,
        );
        let executed = tranche_block::execute(&mut self.w.ledger, &block);
        assert!(executed
            .receipts
            .iter()
            .all(|r| r.outcome == Outcome::Applied));
        self.parent = block.hash();
        (block, executed.receipts)
    }

    /// Block `height + 1` holding `txs`, executed on the world's ledger
    /// (each must apply) and stored.
    fn block(&mut self, store: &ChainStore, txs: Vec<SignedTransaction>) {
        let (block, receipts) = self.execute(txs);
        store
            .commit(&block, &receipts, &[], &self.w.ledger, None)
            .unwrap();
    }

    /// Checks that `loaded` is the state (and root) this chain reached.
    fn assert_same(&self, loaded: &Ledger) {
        assert_eq!(loaded.state(), self.w.ledger.state());
        assert_eq!(loaded.state_root(), self.w.ledger.state_root());
    }

    /// `from` sending `amount` of `T` to `to`, signed.
    fn transfer(&self, from: &Person, to: &Person, amount: u128) -> SignedTransaction {
        self.w.tx(&from.key, self.w.transfer("T", to, amount))
    }
}

/// Stores `w`'s state, made outside any block, as block 1, and writes it
/// as a checkpoint: no block could give it again.
fn first_block(w: World, store: &ChainStore) -> Chain {
    let mut chain = Chain {
        w,
        height: 0,
        parent: Hash::ZERO,
    };
    chain.block(store, Vec::new());
    store.flush().unwrap();
    chain
}

fn genesis() -> Ledger {
    World::new().ledger
}

fn reopened(path: &std::path::Path) -> (ChainStore, Ledger) {
    let store = ChainStore::open(path).unwrap();
    let (_, ledger) = store.load_ledger(&genesis()).unwrap().unwrap();
    (store, ledger)
}

#[test]
fn each_checkpoint_writes_what_changed_and_a_reopen_reads_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (w, a, b) = two_holders();

    let store = ChainStore::open(&path).unwrap();
    let mut chain = first_block(w, &store);

    // All of a's units move: a's balance record is removed, not zeroed.
    let all = chain.transfer(&a, &b, 600);
    chain.block(&store, vec![all]);
    assert_eq!(chain.w.balance("T", &a.wallet()), 0);
    store.flush().unwrap();
    drop(store);

    let (store, loaded) = reopened(&path);
    assert_eq!(store.checkpoint_height().unwrap(), Some(2));
    chain.assert_same(&loaded);
    assert!(!loaded.state().balances.contains_key(&(id("T"), a.wallet())));

    // A store that did not read the state first writes its next
    // checkpoint whole; the result is the same. (The ledger given is one
    // whose tree is all in memory: the world's reads its tree from the
    // store it was committed to, as a node's does.)
    drop(store);
    let rows = chain.w.ledger.state().rows();
    chain.w.ledger = Ledger::from_rows(
        id(CHAIN),
        rows.iter()
            .map(|r| (r.table, r.key.as_slice(), r.value.as_deref().unwrap())),
    )
    .unwrap();
    let store = ChainStore::open(&path).unwrap();
    let back = chain.transfer(&b, &a, 10);
    chain.block(&store, vec![back]);
    store.flush().unwrap();
    drop(store);
    let (store, loaded) = reopened(&path);
    assert_eq!(store.checkpoint_height().unwrap(), Some(3));
    chain.assert_same(&loaded);
}

#[test]
fn checkpoints_are_written_every_so_many_blocks_and_a_restart_executes_the_blocks_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (w, a, b) = two_holders();
    let blocks = 2 * CHECKPOINT_BLOCKS + 40;
    let mut store = ChainStore::open(&path).unwrap();
    let mut chain = first_block(w, &store);
    while chain.height < blocks {
        let (from, to) = if chain.height.is_multiple_of(2) {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let tx = chain.transfer(from, to, 1);
        chain.block(&store, vec![tx]);
        if chain.height == CHECKPOINT_BLOCKS + 40 {
            // A restart between checkpoints: the last checkpoint read back
            // and the forty blocks after it executed again.
            drop(store);
            let (reopened, loaded) = reopened(&path);
            assert_eq!(
                reopened.checkpoint_height().unwrap(),
                Some(1 + CHECKPOINT_BLOCKS)
            );
            chain.assert_same(&loaded);
            // The chain goes on from the state read back, as a node's does
            // (the world's ledger reads its tree from the closed store).
            chain.w.ledger = loaded;
            store = reopened;
        }
    }
    // Closing the store finishes the checkpoint asked for, and asks for
    // none of its own.
    drop(store);
    let (store, loaded) = reopened(&path);
    assert_eq!(
        store.checkpoint_height().unwrap(),
        Some(1 + 2 * CHECKPOINT_BLOCKS)
    );
    chain.assert_same(&loaded);
}

#[test]
fn a_restarted_store_reads_its_tree_from_the_checkpoints_and_keeps_only_newer_nodes_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut w = World::new();
    let people: Vec<Person> = (1..=50).map(Person::new).collect();
    for p in &people {
        w.onboard(p, "KR");
    }
    let allocations: Vec<(&Person, u128)> = people.iter().map(|p| (p, 20)).collect();
    w.tokenize("T", &allocations);
    let store = ChainStore::open(&path).unwrap();
    let mut chain = first_block(w, &store);
    let whole = chain.w.ledger.state().tree_nodes();
    drop(store);

    // The reference keeps its whole tree in memory; the restarted ledger
    // reads what its checkpoints hold from the store. Both execute the same
    // blocks and must reach the same roots; the restarted one's blocks are
    // the ones stored, and its checkpoints are written from it.
    let (store, mut loaded) = reopened(&path);
    assert!(loaded.state().tree_nodes() < whole / 4);
    let mut most_in_memory = 0;
    for i in 0..5 * CHECKPOINT_BLOCKS as usize {
        let from = &people[i % people.len()];
        let to = &people[(i * 7 + 1) % people.len()];
        let txs = if from.did == to.did {
            Vec::new()
        } else {
            vec![chain.transfer(from, to, 1)]
        };
        let (block, _) = chain.execute(txs);
        let executed = tranche_block::execute(&mut loaded, &block);
        assert_eq!(loaded.state_root(), chain.w.ledger.state_root());
        store
            .commit(&block, &executed.receipts, &[], &loaded, None)
            .unwrap();
        // Checkpoints every 64 blocks on their own, and at first some
        // between.
        if i < CHECKPOINT_BLOCKS as usize && i % 16 == 15 {
            store.flush().unwrap();
        }
        most_in_memory = most_in_memory.max(loaded.state().tree_nodes());
    }
    // Each checkpoint let the ledger drop what the one before holds.
    assert!(
        most_in_memory < whole,
        "{most_in_memory} nodes in memory, of a tree of {whole}"
    );
    chain.assert_same(&loaded);
    // A clean stop's checkpoint leaves exactly the tree's nodes stored:
    // every node that left it was deleted, none of them skipped.
    store.flush().unwrap();
    drop(store);
    assert_eq!(
        stored_tree_nodes(&path),
        chain.w.ledger.state().tree_nodes()
    );
    let (_, again) = reopened(&path);
    chain.assert_same(&again);
}

/// How many tree nodes the state database beside the chain at `path` holds.
fn stored_tree_nodes(path: &std::path::Path) -> usize {
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let db = redb::Database::open(tranche_storage::state_path(path)).unwrap();
    let txn = db.begin_read().unwrap();
    let nodes: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("state_tree");
    usize::try_from(txn.open_table(nodes).unwrap().len().unwrap()).unwrap()
}

#[test]
fn a_state_the_stored_blocks_do_not_give_is_refused_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (w, a, b) = two_holders();
    let store = ChainStore::open(&path).unwrap();
    let mut chain = first_block(w, &store);
    // A transfer applied to the ledger but left out of the block: the
    // store takes the ledger's word for its root, but the block does not
    // give it.
    let left_out = chain.w.transfer("T", &b, 1);
    chain.w.ok(&a.key, left_out);
    chain.block(&store, Vec::new());
    drop(store);
    let store = ChainStore::open(&path).unwrap();
    let Err(StorageError::Damaged(why)) = store.load_ledger(&genesis()) else {
        panic!("a state no block gives was read back");
    };
    assert!(why.contains("at block 2"), "{why}");
}

#[test]
fn a_store_with_no_checkpoint_executes_its_blocks_from_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut chain = Chain {
        w: World::new(),
        height: 0,
        parent: Hash::ZERO,
    };
    let store = ChainStore::open(&path).unwrap();
    let p = Person::new(1);
    let bind = chain.w.tx(
        &tranche_testkit::key(1),
        Payload::RegisterWallet(p.binding()),
    );
    chain.block(&store, vec![bind]);
    drop(store);
    // The checkpoint of block 1 removed, as if the node was killed before
    // it was written.
    std::fs::remove_file(tranche_storage::state_path(&path)).unwrap();
    let (store, loaded) = reopened(&path);
    assert_eq!(store.checkpoint_height().unwrap(), None);
    assert_eq!(loaded.state_root(), chain.w.ledger.state_root());
    chain.assert_same(&loaded);
}

#[test]
fn the_rows_of_a_state_rebuild_it_and_its_changes_turn_one_state_into_the_next() {
    let (mut w, a, b) = two_holders();
    let before = w.ledger.clone();
    let all = w.transfer("T", &b, 600);
    w.ok(&a.key, all);

    // Rows of `before`, with the changes applied, are the rows of now.
    let mut rows: std::collections::BTreeMap<(&str, Vec<u8>), Vec<u8>> = before
        .state()
        .rows()
        .into_iter()
        .map(|r| ((r.table, r.key), r.value.unwrap()))
        .collect();
    let changes = w.ledger.state().changes_since(before.state());
    // The transfer changed the sender's nonce, two balances (one removed),
    // the token's holder counts and the sender's identity's holding (gone):
    // five records, whatever the state holds.
    let tables: Vec<&str> = changes.iter().map(|r| r.table).collect();
    assert_eq!(
        tables,
        [
            "nonces",
            "tokens",
            "balances",
            "balances",
            "identity_holdings"
        ],
        "{changes:?}"
    );
    assert!(changes.iter().any(|r| r.value.is_none()));
    for r in changes {
        match r.value {
            Some(v) => rows.insert((r.table, r.key), v),
            None => rows.remove(&(r.table, r.key)),
        };
    }
    let rebuilt = Ledger::from_rows(
        id(CHAIN),
        rows.iter()
            .map(|((t, k), v)| (*t, k.as_slice(), v.as_slice())),
    )
    .unwrap();
    assert_eq!(rebuilt.state(), w.ledger.state());
    assert_eq!(rebuilt.state_root(), w.ledger.state_root());

    // Rows that are not a state are refused.
    assert!(Ledger::from_rows(id(CHAIN), [("balances", &[1u8][..], &[2u8][..])]).is_err());
    assert!(Ledger::from_rows(id(CHAIN), std::iter::empty()).is_err());
}

#[test]
fn a_store_that_kept_its_state_with_the_chain_has_it_moved_to_its_own_database() {
    use redb::TableDefinition;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (w, a, b) = two_holders();
    let store = ChainStore::open(&path).unwrap();
    let mut chain = first_block(w, &store);
    let tx = chain.transfer(&a, &b, 5);
    chain.block(&store, vec![tx]);
    let at_2 = chain.w.ledger.clone();
    let tx = chain.transfer(&b, &a, 7);
    chain.block(&store, vec![tx]);
    drop(store);
    std::fs::remove_file(tranche_storage::state_path(&path)).unwrap();

    // The layout stores had before: the records after the last block, the
    // tree as of block 2 and the records changed since, in the chain's
    // database.
    const STATE: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("state");
    const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state_tree");
    const DIRTY: TableDefinition<(&str, &[u8]), ()> = TableDefinition::new("state_dirty");
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut state = txn.open_table(STATE).unwrap();
            for row in chain.w.ledger.state().rows() {
                state
                    .insert(
                        (row.table, row.key.as_slice()),
                        row.value.unwrap().as_slice(),
                    )
                    .unwrap();
            }
            let tree = at_2.state().tree();
            let mut nodes = txn.open_table(NODES).unwrap();
            for (key, node) in tree.unstored() {
                nodes
                    .insert(key.as_slice(), node.unwrap().as_slice())
                    .unwrap();
            }
            let mut dirty = txn.open_table(DIRTY).unwrap();
            for row in chain.w.ledger.state().changes_since(at_2.state()) {
                dirty.insert((row.table, row.key.as_slice()), ()).unwrap();
            }
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("tree_version", tree.version().to_be_bytes().as_slice())
                .unwrap();
            meta.insert("tree_height", 2u64.to_be_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }

    let (store, loaded) = reopened(&path);
    chain.assert_same(&loaded);
    assert_eq!(store.checkpoint_height().unwrap(), Some(3));
    drop(store);
    {
        use redb::ReadableDatabase;
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(STATE).is_err(), "the old records are gone");
        assert!(txn.open_table(NODES).is_err());
        assert!(txn.open_table(DIRTY).is_err());
        let meta = txn.open_table(META).unwrap();
        assert!(meta.get("tree_height").unwrap().is_none());
    }
    // And it reads back from its own database from now on.
    let (_, loaded) = reopened(&path);
    chain.assert_same(&loaded);
}
