//! What a node finalized survives a reopen and a kill -9 at any moment.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tranche_crypto::Keypair;
use tranche_ledger::Ledger;
use tranche_storage::{BlockRecord, ChainStore, StorageError};
use tranche_types::commonware_codec::Encode as _;
use tranche_types::*;

const CHAIN: &str = "tranche-crash";

fn tsp() -> Keypair {
    tranche_testkit::key(1)
}

fn genesis() -> Ledger {
    tranche_testkit::one_org_ledger(CHAIN, "tsp", &tsp(), vec![Role::Tsp], 0)
}

/// Block `height` of a deterministic chain: one wallet registration.
fn next_block(ledger: &mut Ledger, height: u64, parent: Hash) -> (Block, Vec<Receipt>) {
    let person = tranche_testkit::numbered_key(7, height);
    let stx = tranche_testkit::register_wallet(CHAIN, &tsp(), height, Timestamp(u64::MAX), &person);
    let parent_root = ledger.state_root();
    let time = Timestamp(1_767_225_600_000 + height * 1_000);
    let block = Block::new(
        CHAIN.parse().unwrap(),
        height,
        parent,
        time,
        tsp().public_key(),
        parent_root,
        vec![stx],
    );
    let receipts = tranche_block::execute(ledger, &block).receipts;
    (block, receipts)
}

/// Extends the stored chain by `n` blocks.
fn extend(store: &ChainStore, n: u64, report: impl Fn(u64)) {
    let (mut height, mut ledger) = store
        .load_ledger(&genesis())
        .unwrap()
        .unwrap_or((0, genesis()));
    for _ in 0..n {
        let parent = if height == 0 {
            Hash::ZERO
        } else {
            store.block(height).unwrap().unwrap().hash()
        };
        height += 1;
        let (block, receipts) = next_block(&mut ledger, height, parent);
        assert_eq!(receipts[0].outcome, Outcome::Applied);
        store
            .commit(&block, &receipts, &[], &ledger, Some(&[7, 7]))
            .unwrap();
        report(height);
    }
}

/// The root after `height` blocks, replayed from genesis in memory.
fn replayed_root(height: u64) -> Hash {
    let mut ledger = genesis();
    let mut parent = Hash::ZERO;
    for h in 1..=height {
        let (block, _) = next_block(&mut ledger, h, parent);
        parent = block.hash();
    }
    ledger.state_root()
}

fn check_whole(store: &ChainStore) -> u64 {
    let height = store.finalized_height().unwrap();
    let mut parent = Hash::ZERO;
    for h in 1..=height {
        let block = store
            .block(h)
            .unwrap()
            .expect("every height up to the last is stored");
        assert_eq!(block.header.parent, parent);
        assert!(block.tx_root_matches());
        assert_eq!(store.block_by_hash(&block.hash()).unwrap().unwrap(), block);
        assert_eq!(
            store.block_bytes(h).unwrap().unwrap(),
            block.encode().to_vec(),
            "a block is stored in its canonical encoding, sent as it is"
        );
        assert_eq!(store.receipts(h).unwrap().unwrap().len(), 1);
        assert_eq!(
            store.certificate(h).unwrap().as_deref(),
            Some(&[7u8, 7][..])
        );
        parent = block.hash();
    }
    if height > 0 {
        let (h, ledger) = store.load_ledger(&genesis()).unwrap().unwrap();
        assert_eq!(h, height);
        assert_eq!(ledger.state_root(), store.state_root(h).unwrap().unwrap());
        assert_eq!(
            ledger.state_root(),
            replayed_root(h),
            "the stored state is the replayed state"
        );
    }
    height
}

#[test]
fn blocks_and_the_ledger_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    {
        let store = ChainStore::open(&path).unwrap();
        assert_eq!(store.finalized_height().unwrap(), 0);
        assert!(store.load_ledger(&genesis()).unwrap().is_none());
        extend(&store, 20, |_| ());
    }
    let store = ChainStore::open(&path).unwrap();
    assert_eq!(check_whole(&store), 20);
    extend(&store, 5, |_| ());
    assert_eq!(check_whole(&store), 25);
}

#[test]
fn blocks_out_of_order_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(&dir.path().join("chain.redb")).unwrap();
    extend(&store, 2, |_| ());
    let mut ledger = store.load_ledger(&genesis()).unwrap().unwrap().1;
    let (gap, r) = next_block(&mut ledger, 4, store.block(2).unwrap().unwrap().hash());
    assert!(matches!(
        store.commit(&gap, &r, &[], &ledger, None),
        Err(StorageError::OutOfOrder { height: 4, .. })
    ));
    let mut ledger = store.load_ledger(&genesis()).unwrap().unwrap().1;
    let (fork, r) = next_block(&mut ledger, 3, Hash([9; 32]));
    assert!(matches!(
        store.commit(&fork, &r, &[], &ledger, None),
        Err(StorageError::OutOfOrder { height: 3, .. })
    ));
    assert_eq!(check_whole(&store), 2);
}

/// Run by `kill_dash_9_loses_nothing_finalized` in a child process: commits
/// blocks and reports each one, until it is killed.
#[test]
#[ignore = "a helper process for kill_dash_9_loses_nothing_finalized"]
fn crash_writer() {
    let dir = std::env::var("TRANCHE_CRASH_DIR").expect("run by the crash test");
    let store = ChainStore::open(&Path::new(&dir).join("chain.redb")).unwrap();
    extend(&store, 100_000, |h| println!("committed {h}"));
}

#[test]
fn kill_dash_9_loses_nothing_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = 0;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_writer",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("TRANCHE_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reported = 0u64;
        // Kill it after a number of new commits that differs each round,
        // while it is busy with the next one; the later rounds after a
        // state checkpoint, so a restart executes blocks after one.
        let target = before + 5 + round * 37;
        while let Some(Ok(line)) = lines.next() {
            if let Some(h) = line.strip_prefix("committed ") {
                reported = h.parse().unwrap();
                if reported >= target {
                    break;
                }
            }
        }
        assert!(
            reported >= target,
            "round {round}: the writer stopped at {reported}"
        );
        child.kill().unwrap(); // SIGKILL: no destructor, no flush
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        let store = ChainStore::open(&dir.path().join("chain.redb")).unwrap();
        let height = check_whole(&store);
        assert!(
            height >= reported,
            "round {round}: reported {reported} committed, found {height}"
        );
        before = height;
    }
}

#[test]
fn a_batch_of_blocks_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let store = ChainStore::open(&path).unwrap();
    extend(&store, 2, |_| ());
    let (_, mut ledger) = store.load_ledger(&genesis()).unwrap().unwrap();
    let mut parent = store.block(2).unwrap().unwrap().hash();
    let mut made = Vec::new();
    for height in 3..=5 {
        let (block, receipts) = next_block(&mut ledger, height, parent);
        parent = block.hash();
        made.push((block, receipts, ledger.state_root()));
    }
    let all = made;
    fn as_records(items: &[(Block, Vec<Receipt>, Hash)]) -> Vec<BlockRecord<'_>> {
        items
            .iter()
            .map(|(block, receipts, root)| BlockRecord {
                block,
                receipts,
                transfers: &[],
                state_root: *root,
                certificate: Some(&[7, 7]),
            })
            .collect()
    }
    // A gap inside the batch: nothing of it is stored.
    let gapped = [all[0].clone(), all[2].clone()];
    assert!(matches!(
        store.commit_batch(&as_records(&gapped), &ledger),
        Err(StorageError::OutOfOrder { height: 5, .. })
    ));
    assert_eq!(store.finalized_height().unwrap(), 2);
    // The state given must be the state after the last block.
    let early = store.load_ledger(&genesis()).unwrap().unwrap().1;
    assert!(store.commit_batch(&as_records(&all), &early).is_err());
    assert_eq!(store.finalized_height().unwrap(), 2);
    store.commit_batch(&as_records(&all), &ledger).unwrap();
    drop(store);
    let store = ChainStore::open(&path).unwrap();
    assert_eq!(check_whole(&store), 5);
}

#[test]
fn a_block_is_read_back_undecoded_part_by_part_as_it_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = ChainStore::open(&dir.path().join("chain.redb")).unwrap();
    let mut ledger = genesis();
    let (block, receipts) = next_block(&mut ledger, 1, Hash::ZERO);
    let moved = |n: u8| TransferRecord {
        date: "2026-01-01".parse().unwrap(),
        height: 1,
        tx: block.txs[0].hash(),
        token: "T".parse().unwrap(),
        from: Some(WalletAddress([n; 20])),
        to: WalletAddress([n + 1; 20]),
        amount: Units(u128::from(n)),
        reference: None,
        kind: TransferKind::Holder,
        holder_authorization: None,
        reason: None,
    };
    let transfers = vec![moved(1), moved(2), moved(3)];
    store
        .commit(&block, &receipts, &transfers, &ledger, None)
        .unwrap();

    let parts = store.block_parts(1).unwrap().unwrap();
    let decode = |bytes: &[u8]| tranche_types::codec::decode::<Block>("block", bytes).unwrap();
    assert_eq!(decode(&parts.block), block);
    assert_eq!(parts.state_root, Some(ledger.state_root()));
    let read: Vec<TransferRecord> = parts
        .transfers
        .iter()
        .map(|t| tranche_types::codec::decode("transfer", t).unwrap())
        .collect();
    assert_eq!(read, transfers, "every movement, in order");
    assert_eq!(
        parts.receipts,
        receipts.encode().to_vec(),
        "the receipts as encoded together"
    );
    assert_eq!(store.block_parts(2).unwrap(), None);
}
