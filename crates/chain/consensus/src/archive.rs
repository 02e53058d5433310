//! The writer between a validator and its archive (a node's chain store,
//! or the simulations' memory archive: see `tranche_storage::Archive`).
//!
//! The application hands finalized blocks to a writer task and goes on
//! voting: a disk sync per block would otherwise hold up the next
//! verification. The writer stores them in order, whatever has queued up in
//! one write, and only then reports them, so nothing a node reports final
//! can be lost in a crash (what was handed over but not yet stored is
//! fetched again from peers after a restart). Until a block is stored, the
//! application answers other validators' requests for it from memory.

use crate::application::Finalized;
use commonware_runtime::{Clock, Spawner};
use commonware_utils::channel::fallible::AsyncFallibleExt as _;
use commonware_utils::channel::{mpsc, oneshot};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tranche_ledger::{LedgerEvent, TransferRecord};
use tranche_storage::{Archive, BlockRecord, StorageError};
use tranche_types::commonware_codec::Encode as _;
use tranche_types::{Block, Hash, SignedTransaction, Timestamp};

/// The most finalized blocks stored in one write.
const COMMIT_BATCH_MAX: usize = 64;

/// The most finalized blocks handed to the writer and not yet stored. At
/// the limit the application waits for the writer before it takes its next
/// message: a stalled disk slows the chain down instead of filling memory.
pub(crate) const UNSTORED_BLOCKS_MAX: usize = 1_024;

/// The most stored blocks reported and not yet taken by whoever observes
/// them (the node's API publisher). At the limit the writer waits to report
/// the next, and stores no more meanwhile: a stalled reader, like a stalled
/// disk, slows the chain down instead of filling memory.
pub const FINALIZED_QUEUED_MAX: usize = 256;

/// A finalized block on its way to the archive.
#[derive(Debug)]
pub(crate) struct Final {
    /// The block's hash.
    pub(crate) hash: Hash,
    /// What is reported once it is stored.
    pub(crate) finalized: Finalized,
    /// The certificate that finalized it, if it was the last of a run.
    pub(crate) certificate: Option<Vec<u8>>,
}

/// Blocks handed to the writer and not yet stored.
#[derive(Debug, Default)]
struct Unstored {
    by_height: BTreeMap<u64, Arc<Final>>,
    heights: HashMap<Hash, u64>,
}

/// The application's side of its archive: reads see every block handed
/// over, stored or not.
#[derive(Debug)]
pub(crate) struct Stored<A> {
    archive: A,
    unstored: Arc<Mutex<Unstored>>,
    // Unbounded as a channel, bounded by `room`: at most
    // `UNSTORED_BLOCKS_MAX` blocks plus one hand-over are ever queued.
    jobs: mpsc::UnboundedSender<Vec<Arc<Final>>>,
    /// Signalled by the writer each time it has stored blocks.
    drained: Arc<Notify>,
}

/// A chain store that cannot be read or written is a fault the node cannot
/// work around.
fn stored<T>(result: Result<T, StorageError>) -> T {
    result.unwrap_or_else(|e| panic!("the chain store failed: {e}"))
}

fn lock(unstored: &Mutex<Unstored>) -> std::sync::MutexGuard<'_, Unstored> {
    // A panic while holding the lock leaves plain data behind; keep going.
    unstored.lock().unwrap_or_else(|e| e.into_inner())
}

impl<A: Archive> Stored<A> {
    /// Starts the writer of `archive` (on a thread of its own where the
    /// runtime has threads), which reports each block on `observer` once it
    /// is stored. Should the archive fail to store, the writer says why on
    /// `failed` and stops: it stores and reports nothing more.
    pub(crate) fn start<E: Spawner + Clock>(
        context: E,
        archive: A,
        observer: mpsc::Sender<Finalized>,
        failed: oneshot::Sender<String>,
    ) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let unstored = Arc::new(Mutex::new(Unstored::default()));
        let drained = Arc::new(Notify::new());
        let writer = Writer {
            unstored: Arc::clone(&unstored),
            drained: Arc::clone(&drained),
            observer,
        };
        let store = archive.clone();
        let writer = (writer, failed);
        context
            .dedicated()
            .spawn(move |context| write(context, store, writer, queue));
        Stored {
            archive,
            unstored,
            jobs,
            drained,
        }
    }

    /// Blocks handed over and not yet stored.
    pub(crate) fn backlog(&self) -> usize {
        lock(&self.unstored).by_height.len()
    }

    /// Waits until the writer has room: fewer than [`UNSTORED_BLOCKS_MAX`]
    /// blocks unstored.
    pub(crate) async fn room(&self) {
        loop {
            // Made before the check, so a drain between the check and the
            // wait still wakes it.
            let drained = self.drained.notified();
            if self.backlog() < UNSTORED_BLOCKS_MAX {
                return;
            }
            drained.await;
        }
    }

    /// Hands consecutive finalized blocks, following those handed before,
    /// to the writer.
    pub(crate) fn store(&self, finals: Vec<Final>) {
        let finals: Vec<Arc<Final>> = finals.into_iter().map(Arc::new).collect();
        {
            let mut u = lock(&self.unstored);
            for f in &finals {
                let height = f.finalized.block.header.height;
                u.heights.insert(f.hash, height);
                u.by_height.insert(height, Arc::clone(f));
            }
        }
        // The writer stops only with the runtime.
        let _ = self.jobs.send(finals);
    }

    /// The finalized block at `height`.
    pub(crate) fn block(&self, height: u64) -> Option<Block> {
        if let Some(f) = lock(&self.unstored).by_height.get(&height) {
            return Some(f.finalized.block.clone());
        }
        stored(self.archive.block(height))
    }

    /// The finalized block at `height` in its canonical encoding.
    pub(crate) fn block_bytes(&self, height: u64) -> Option<Vec<u8>> {
        if let Some(f) = lock(&self.unstored).by_height.get(&height) {
            return Some(f.finalized.block.encode().to_vec());
        }
        stored(self.archive.block_bytes(height))
    }

    /// The finalized block with this hash.
    pub(crate) fn block_by_hash(&self, hash: &Hash) -> Option<Block> {
        {
            let u = lock(&self.unstored);
            if let Some(f) = u.heights.get(hash).and_then(|h| u.by_height.get(h)) {
                return Some(f.finalized.block.clone());
            }
        }
        stored(self.archive.block_by_hash(hash))
    }

    /// Whether `stx` is in a finalized block not yet stored: a node that
    /// has just finalized it must not call a repeated submission of it a
    /// used nonce only because its store lags a moment behind.
    pub(crate) fn holds_unstored(&self, stx: &SignedTransaction) -> bool {
        let u = lock(&self.unstored);
        let tx = &stx.tx;
        u.by_height.values().any(|f| {
            f.finalized.block.txs.iter().any(|t| {
                t.tx.signer == tx.signer
                    && t.tx.nonce == tx.nonce
                    && t.signature == stx.signature
                    && t.hash() == stx.hash()
            })
        })
    }

    /// The finalization certificate of the block at `height`, if it had one.
    pub(crate) fn certificate(&self, height: u64) -> Option<Vec<u8>> {
        if let Some(f) = lock(&self.unstored).by_height.get(&height) {
            return f.certificate.clone();
        }
        stored(self.archive.certificate(height))
    }
}

/// Milliseconds from `a` to `b` (0 if `b` is earlier), for logs.
pub(crate) fn ms_between(a: SystemTime, b: SystemTime) -> u128 {
    b.duration_since(a).map(|d| d.as_millis()).unwrap_or(0)
}

/// Milliseconds from a block's timestamp to `now`, for logs.
pub(crate) fn since(time: Timestamp, now: SystemTime) -> u128 {
    ms_between(UNIX_EPOCH + Duration::from_millis(time.0), now)
}

/// The writer: stores handed-over blocks in order, everything queued in
/// as few writes as [`COMMIT_BATCH_MAX`] allows, then reports them.
/// The writer's side: where stored blocks are taken off and reported.
struct Writer {
    unstored: Arc<Mutex<Unstored>>,
    drained: Arc<Notify>,
    observer: mpsc::Sender<Finalized>,
}

async fn write<E: Clock, A: Archive>(
    context: E,
    mut archive: A,
    (writer, failed): (Writer, oneshot::Sender<String>),
    mut jobs: mpsc::UnboundedReceiver<Vec<Arc<Final>>>,
) {
    while let Some(mut finals) = jobs.recv().await {
        while let Ok(more) = jobs.try_recv() {
            finals.extend(more);
        }
        let started = context.current();
        let mut finals = finals.into_iter().peekable();
        while finals.peek().is_some() {
            let batch: Vec<Arc<Final>> = finals.by_ref().take(COMMIT_BATCH_MAX).collect();
            if let Err(e) = commit(&mut archive, &batch) {
                let last = batch.last().expect("batches are not empty");
                let why = format!(
                    "the chain store could not store the finalized blocks up to {}: {e}",
                    last.finalized.block.header.height
                );
                // Blocks not stored were never reported final: a restart
                // fetches them again.
                tracing::error!("{why}; storing and reporting nothing more");
                let _ = failed.send(why);
                return;
            }
            let last = &batch.last().expect("batches are not empty").finalized.block;
            let now = context.current();
            tracing::debug!(
                height = last.header.height,
                blocks = batch.len(),
                store_ms = ms_between(started, now),
                since_made_ms = since(last.header.time, now),
                "stored"
            );
            report(&writer, batch).await;
        }
    }
}

/// Stores `batch` in one write.
fn commit<A: Archive>(archive: &mut A, batch: &[Arc<Final>]) -> Result<(), StorageError> {
    let transfers: Vec<Vec<TransferRecord>> = batch
        .iter()
        .map(|f| {
            f.finalized
                .events
                .iter()
                .filter_map(|e| match e {
                    LedgerEvent::Transfer(t) => Some(t.clone()),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let records: Vec<BlockRecord<'_>> = batch
        .iter()
        .zip(&transfers)
        .map(|(f, transfers)| BlockRecord {
            block: &f.finalized.block,
            receipts: &f.finalized.receipts,
            transfers,
            state_root: f.finalized.state_root,
            certificate: f.certificate.as_deref(),
        })
        .collect();
    let last = &batch.last().expect("batches are not empty").finalized;
    archive.commit(&records, &last.ledger)
}

/// Takes stored blocks off the unstored ones and reports them, in order.
async fn report(writer: &Writer, stored: Vec<Arc<Final>>) {
    {
        let mut u = lock(&writer.unstored);
        for f in &stored {
            u.by_height.remove(&f.finalized.block.header.height);
            u.heights.remove(&f.hash);
        }
    }
    writer.drained.notify_waiters();
    for f in stored {
        let finalized = match Arc::try_unwrap(f) {
            Ok(f) => f.finalized,
            // A reader holds it for a moment.
            Err(shared) => shared.finalized.clone(),
        };
        // Nobody listening (a simulation) is not a fault.
        writer.observer.send_lossy(finalized).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{deterministic, Runner as _, Supervisor as _};
    use tranche_storage::MemoryArchive;
    use tranche_types::{Block, PublicKey};

    fn final_at(height: u64, ledger: &Arc<tranche_ledger::Ledger>) -> Final {
        let block = Block::new(
            "tranche-test".parse().unwrap(),
            height,
            Hash([height as u8; 32]),
            Timestamp(height),
            PublicKey([0; 32]),
            Hash::ZERO,
            Vec::new(),
        );
        Final {
            hash: block.hash(),
            certificate: None,
            finalized: Finalized {
                block,
                receipts: Vec::new(),
                events: Vec::new(),
                state_root: Hash::ZERO,
                ledger: Arc::clone(ledger),
            },
        }
    }

    type Reported = mpsc::Receiver<Finalized>;

    /// A writer on `archive`, its reports, and where it says why it failed.
    fn writer_on<A: Archive>(
        context: &deterministic::Context,
        archive: A,
    ) -> (Stored<A>, Reported, oneshot::Receiver<String>) {
        let (observer, reported) = mpsc::channel(FINALIZED_QUEUED_MAX);
        let (failed, failure) = oneshot::channel();
        let stored = Stored::start(context.child("writer"), archive, observer, failed);
        (stored, reported, failure)
    }

    /// A memory archive that refuses every block from a height on, as a
    /// full disk would.
    #[derive(Clone)]
    struct Filling {
        inner: MemoryArchive,
        full_from: u64,
    }

    impl Archive for Filling {
        fn commit(
            &mut self,
            blocks: &[BlockRecord<'_>],
            ledger: &tranche_ledger::Ledger,
        ) -> Result<(), StorageError> {
            if blocks
                .iter()
                .any(|b| b.block.header.height >= self.full_from)
            {
                return Err(StorageError::Db(
                    "No space left on device (os error 28)".into(),
                ));
            }
            self.inner.commit(blocks, ledger)
        }
        fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
            self.inner.certificate(height)
        }
        fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
            self.inner.block(height)
        }
        fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
            self.inner.block_by_hash(hash)
        }
    }

    #[test]
    fn a_store_that_fails_stops_the_writer_which_says_why_and_reports_only_what_it_stored() {
        deterministic::Runner::default().start(|context| async move {
            let inner = MemoryArchive::default();
            let archive = Filling {
                inner: inner.clone(),
                full_from: 100,
            };
            let (stored, mut reported, failure) = writer_on(&context, archive);
            let (_, ledger) = solo();
            for h in 1..=150 {
                stored.store(vec![final_at(h, &ledger)]);
            }
            let why = failure.await.expect("the writer says why it stopped");
            assert!(why.contains("No space left on device"), "{why}");
            assert!(why.contains("the chain store could not store"), "{why}");
            // Everything reported was stored, in order, and nothing after.
            let mut last = 0;
            while let Ok(f) = reported.try_recv() {
                last += 1;
                assert_eq!(f.block.header.height, last);
            }
            assert_eq!(last, inner.chain().len() as u64);
            assert!(last < 100, "nothing from the full disk on is reported");
            // What was not stored is still served from memory, and no more
            // is taken off.
            assert_eq!(stored.block(150).unwrap().header.height, 150);
            assert_eq!(stored.backlog() as u64, 150 - last);
        });
    }

    /// A one-organisation ledger, and the organisation's key.
    fn solo() -> (tranche_crypto::Keypair, Arc<tranche_ledger::Ledger>) {
        let key = tranche_testkit::key(1);
        let ledger = Arc::new(tranche_testkit::one_org_ledger(
            "tranche-test",
            "solo",
            &key,
            Vec::new(),
            0,
        ));
        (key, ledger)
    }

    /// A writer on a memory archive, and a one-organisation ledger.
    fn writer(
        context: &deterministic::Context,
    ) -> (
        MemoryArchive,
        Stored<MemoryArchive>,
        Reported,
        tranche_crypto::Keypair,
        Arc<tranche_ledger::Ledger>,
    ) {
        let archive = MemoryArchive::default();
        let (stored, reported, _) = writer_on(context, archive.clone());
        let (key, ledger) = solo();
        (archive, stored, reported, key, ledger)
    }

    #[test]
    fn a_full_writer_makes_the_application_wait_until_blocks_are_stored() {
        deterministic::Runner::default().start(|context| async move {
            let (archive, stored, mut reported, _, ledger) = writer(&context);
            let full = UNSTORED_BLOCKS_MAX as u64;
            stored.store((1..=full).map(|h| final_at(h, &ledger)).collect());
            // Nothing awaited yet, so the writer has not run: the backlog is
            // at the limit, and every block is readable while unstored.
            assert_eq!(stored.backlog(), UNSTORED_BLOCKS_MAX);
            assert_eq!(stored.block(full).unwrap().header.height, full);
            assert!(archive.chain().is_empty());
            // Returns only once the writer has stored blocks.
            stored.room().await;
            assert!(stored.backlog() < UNSTORED_BLOCKS_MAX);
            assert!(!archive.chain().is_empty());
            // Every block is reported once, in order, after it is stored.
            for h in 1..=full {
                let f = reported.recv().await.unwrap();
                assert_eq!(f.block.header.height, h);
            }
            assert_eq!(archive.chain().len(), UNSTORED_BLOCKS_MAX);
            assert_eq!(stored.backlog(), 0);
            // With room, it does not wait at all.
            stored.room().await;
        });
    }

    #[test]
    fn a_stalled_reader_holds_the_chain_back_and_loses_nothing() {
        deterministic::Runner::default().start(|context| async move {
            let (archive, stored, mut reported, _, ledger) = writer(&context);
            // Nobody reads the reports: the application stores on while the
            // writer has room.
            let mut next = 1u64;
            loop {
                let held_back = commonware_macros::select! {
                    _ = stored.room() => false,
                    _ = context.sleep(Duration::from_secs(5)) => true,
                };
                if held_back {
                    break;
                }
                stored.store(vec![final_at(next, &ledger)]);
                next += 1;
                assert!(next < 10 * UNSTORED_BLOCKS_MAX as u64, "it never held back");
            }
            assert_eq!(stored.backlog(), UNSTORED_BLOCKS_MAX);
            // What is held: the reports waiting to be read, the blocks of
            // the write in hand (at most all that were unstored when it
            // began) waiting to be reported, and as many again unstored.
            let held = next - 1;
            assert!(
                held <= (FINALIZED_QUEUED_MAX + 2 * UNSTORED_BLOCKS_MAX) as u64,
                "{held} blocks held"
            );
            assert!(archive.chain().len() >= FINALIZED_QUEUED_MAX);
            // Reading again, every block is stored and reported once, in order.
            for h in 1..next {
                let f = reported.recv().await.unwrap();
                assert_eq!(f.block.header.height, h);
            }
            assert_eq!(archive.chain().len() as u64, next - 1);
            assert_eq!(stored.backlog(), 0);
        });
    }

    #[test]
    fn a_transaction_final_but_not_yet_stored_is_known_as_itself_only() {
        deterministic::Runner::default().start(|context| async move {
            let (_, stored, mut reported, key, ledger) = writer(&context);
            let person = tranche_testkit::key(2);
            let tx = |nonce| {
                tranche_testkit::register_wallet("tranche-test", &key, nonce, Timestamp(9), &person)
            };
            let mut f = final_at(1, &ledger);
            f.finalized.block.txs.push(tx(0));
            stored.store(vec![f]);
            assert!(stored.holds_unstored(&tx(0)));
            assert!(!stored.holds_unstored(&tx(1)), "another nonce");
            let mut forged = tx(0);
            forged.signature = tx(1).signature;
            assert!(!stored.holds_unstored(&forged), "another signature");
            // Once stored, the store answers for it.
            reported.recv().await.unwrap();
            assert!(!stored.holds_unstored(&tx(0)));
        });
    }
}
