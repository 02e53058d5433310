//! The ledger is stored record by record: each commit writes what its
//! blocks changed — removals included — and a reopened store reads back
//! exactly the state it was given, with the same root.

use tranche_ledger::Ledger;
use tranche_storage::ChainStore;
use tranche_testkit::world::{id, Person, World, CHAIN};
use tranche_types::*;

/// An empty block at `height` after `parent`, made on `ledger`.
fn block(ledger: &Ledger, height: u64, parent: Hash) -> Block {
    Block::new(
        CHAIN.parse().unwrap(),
        height,
        parent,
        Timestamp(1_767_225_600_000 + height),
        tranche_testkit::key(1).public_key(),
        ledger.state_root(),
        Vec::new(),
    )
}

/// Two onboarded people holding token `T`, 600 and 400.
fn two_holders() -> (World, Person, Person) {
    let mut w = World::new();
    let (a, b) = (Person::new(1), Person::new(2));
    w.onboard(&a, "KR");
    w.onboard(&b, "KR");
    w.tokenize("T", &[(&a, 600), (&b, 400)]);
    (w, a, b)
}

fn reopened(path: &std::path::Path) -> (ChainStore, Ledger) {
    let store = ChainStore::open(path).unwrap();
    let (_, ledger) = store.load_ledger(&id(CHAIN)).unwrap().unwrap();
    (store, ledger)
}

#[test]
fn each_commit_writes_what_changed_and_a_reopen_reads_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (mut w, a, b) = two_holders();

    let store = ChainStore::open(&path).unwrap();
    let b1 = block(&w.ledger, 1, Hash::ZERO);
    store.commit(&b1, &[], &[], &w.ledger, None).unwrap();

    // All of a's units move: a's balance record is removed, not zeroed.
    let all = w.transfer("T", &b, 600);
    w.ok(&a.key, all);
    assert_eq!(w.balance("T", &a.wallet()), 0);
    let b2 = block(&w.ledger, 2, b1.hash());
    store.commit(&b2, &[], &[], &w.ledger, None).unwrap();
    drop(store);

    let (store, loaded) = reopened(&path);
    assert_eq!(loaded.state(), w.ledger.state());
    assert_eq!(loaded.state_root(), w.ledger.state_root());
    assert!(!loaded.state().balances.contains_key(&(id("T"), a.wallet())));

    // A commit from a process that did not read the state first rewrites
    // it whole; the result is the same.
    drop(store);
    let store = ChainStore::open(&path).unwrap();
    let back = w.transfer("T", &a, 10);
    w.ok(&b.key, back);
    let b3 = block(&w.ledger, 3, b2.hash());
    store.commit(&b3, &[], &[], &w.ledger, None).unwrap();
    drop(store);
    let (_, loaded) = reopened(&path);
    assert_eq!(loaded.state(), w.ledger.state());
    assert_eq!(loaded.state_root(), w.ledger.state_root());
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
fn the_tree_is_checkpointed_and_a_restart_brings_it_up_to_date_from_the_changed_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (mut w, a, b) = two_holders();
    let blocks = 2 * tranche_storage::TREE_CHECKPOINT_BLOCKS + 40;
    let mut store = ChainStore::open(&path).unwrap();
    let mut parent = Hash::ZERO;
    for height in 1..=blocks {
        let (from, to) = if height % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let p = w.transfer("T", to, 1);
        w.ok(&from.key, p);
        let block = block(&w.ledger, height, parent);
        store.commit(&block, &[], &[], &w.ledger, None).unwrap();
        parent = block.hash();
        if height == tranche_storage::TREE_CHECKPOINT_BLOCKS + 40 {
            // A restart between checkpoints: the tree read back and brought
            // up to date from the records changed since its checkpoint.
            drop(store);
            let (reopened, loaded) = reopened(&path);
            assert_eq!(loaded.state_root(), w.ledger.state_root());
            store = reopened;
        }
    }
    drop(store);
    let (_, loaded) = reopened(&path);
    assert_eq!(loaded.state(), w.ledger.state());
    assert_eq!(loaded.state_root(), w.ledger.state_root());
}
