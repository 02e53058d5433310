//! Where a validator keeps what it has finalized: the [`Archive`] trait,
//! served on disk by [`ChainStore`] in a node and in memory by
//! [`MemoryArchive`] in simulations.

use crate::{BlockRecord, ChainStore, StorageError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tranche_ledger::Ledger;
use tranche_types::commonware_codec::Encode as _;
use tranche_types::{Block, Hash};

/// Finalized blocks, kept durably.
pub trait Archive: Clone + Send + Sync + 'static {
    /// Stores consecutive finalized blocks and `ledger`, the state after
    /// the last, all or none. Blocks arrive in height order, each exactly
    /// once.
    fn commit(&mut self, blocks: &[BlockRecord<'_>], ledger: &Ledger) -> Result<(), StorageError>;
    /// The finalization certificate of the block at `height`, if it had one.
    fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError>;
    /// The finalized block at `height`.
    fn block(&self, height: u64) -> Result<Option<Block>, StorageError>;
    /// The finalized block at `height` in its canonical encoding: what a
    /// peer catching up is sent, without decoding and encoding it again.
    fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.block(height)?.map(|b| b.encode().to_vec()))
    }
    /// The finalized block with this hash.
    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StorageError>;
}

impl Archive for Arc<ChainStore> {
    fn commit(&mut self, blocks: &[BlockRecord<'_>], ledger: &Ledger) -> Result<(), StorageError> {
        self.commit_batch(blocks, ledger)
    }
    fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        ChainStore::certificate(self, height)
    }
    fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        ChainStore::block(self, height)
    }
    fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        ChainStore::block_bytes(self, height)
    }
    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
        ChainStore::block_by_hash(self, hash)
    }
}

#[derive(Debug, Default)]
struct Memory {
    blocks: Vec<Block>,
    roots: Vec<Hash>,
    heights: HashMap<Hash, u64>,
    certificates: HashMap<u64, Vec<u8>>,
    latest: Option<Ledger>,
}

/// An archive in memory that outlives the validator using it, so a
/// simulated validator can crash and restart from what it had finalized.
#[derive(Clone, Debug, Default)]
pub struct MemoryArchive(Arc<Mutex<Memory>>);

impl MemoryArchive {
    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last finalized block's height and the ledger after it.
    pub fn latest(&self) -> Option<(Block, Ledger)> {
        let m = self.lock();
        Some((m.blocks.last()?.clone(), m.latest.clone()?))
    }
}

impl MemoryArchive {
    /// Every finalized block as (height, hash, state root after it).
    pub fn chain(&self) -> Vec<(u64, Hash, Hash)> {
        let m = self.lock();
        m.blocks
            .iter()
            .zip(&m.roots)
            .map(|(b, r)| (b.header.height, b.hash(), *r))
            .collect()
    }
}

impl Archive for MemoryArchive {
    fn commit(&mut self, blocks: &[BlockRecord<'_>], ledger: &Ledger) -> Result<(), StorageError> {
        let mut m = self.lock();
        for (i, c) in blocks.iter().enumerate() {
            let expected = (m.blocks.len() + i) as u64 + 1;
            if c.block.header.height != expected {
                return Err(StorageError::OutOfOrder {
                    height: c.block.header.height,
                    reason: format!("{expected} was expected"),
                });
            }
        }
        for c in blocks {
            m.heights.insert(c.block.hash(), c.block.header.height);
            if let Some(certificate) = c.certificate {
                m.certificates
                    .insert(c.block.header.height, certificate.to_vec());
            }
            m.blocks.push(c.block.clone());
            m.roots.push(c.state_root);
        }
        if !blocks.is_empty() {
            m.latest = Some(ledger.clone());
        }
        Ok(())
    }
    fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        let m = self.lock();
        Ok(height
            .checked_sub(1)
            .and_then(|i| m.blocks.get(usize::try_from(i).ok()?))
            .cloned())
    }
    fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().certificates.get(&height).cloned())
    }
    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
        let height = self.lock().heights.get(hash).copied();
        match height {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }
}
