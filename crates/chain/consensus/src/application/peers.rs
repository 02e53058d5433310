//! What the application exchanges with its peers: missing blocks asked for
//! and answered, transactions gossiped in batches, finalized blocks fetched
//! by a member that fell behind.

use super::*;

impl<E, S, R, A> Application<E, S, R, A>
where
    E: Clock + Spawner + Metrics + CryptoRng,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
    A: Archive,
{
    /// Asks the peers for the block `digest` (and its ancestors), unless it
    /// was asked for moments ago.
    pub(super) fn request(&mut self, digest: Digest) {
        let now = self.context.current();
        if let Some(last) = self.requested.get(&digest) {
            if now.duration_since(*last).unwrap_or_default() < RETRY {
                return;
            }
        }
        self.requested.insert(digest, now);
        let mut bytes = vec![TAG_REQUEST];
        bytes.extend_from_slice(digest.as_ref());
        // Ancestors at or below this height are final here: not wanted.
        bytes.extend_from_slice(&self.base_tip.height.to_be_bytes());
        let _ = self.blocks_out.send(Recipients::All, bytes, false);
    }

    /// A block this validator holds, finalized or not.
    pub(super) fn lookup(&self, digest: &Digest) -> Option<Block> {
        if let Some(k) = self.known.get(digest) {
            return Some(k.block.clone());
        }
        if let Some(b) = self.received.get(digest) {
            return Some(b.clone());
        }
        self.store.block_by_hash(&Hash(digest.0))
    }

    /// Answers `peer`'s request for `digest` with the block and its
    /// ancestors, newest first.
    pub(super) fn answer(&mut self, peer: ConsensusKey, digest: Digest, floor: u64) {
        let mut cursor = digest;
        for _ in 0..ANCESTORS_MAX {
            let Some(block) = self.lookup(&cursor) else {
                break;
            };
            if block.header.height <= floor {
                // The asker has finalized it: a lagging node asking for
                // many blocks would otherwise get back what it holds.
                break;
            }
            let _ =
                self.blocks_out
                    .send(Recipients::One(peer.clone()), block_message(&block), false);
            if block.header.height <= 1 {
                break;
            }
            cursor = digest_of(&block.header.parent);
        }
    }

    /// Retries every waiting verification; asks for what is still missing.
    pub(super) fn retry_waiting(&mut self) {
        let digests: Vec<Digest> = self.waiting.keys().copied().collect();
        for digest in digests {
            let Some(waiters) = self.waiting.remove(&digest) else {
                continue;
            };
            let mut still = Vec::new();
            for (context, response) in waiters {
                if response.is_closed() {
                    // Consensus moved on without this verdict.
                    continue;
                }
                let verdict = self.judge(&context, digest);
                if verdict == Resolved::Valid {
                    self.trace_known(&digest, "verified once received");
                }
                match verdict {
                    Resolved::Valid => {
                        response.send_lossy(true);
                    }
                    Resolved::Invalid => {
                        response.send_lossy(false);
                    }
                    Resolved::Missing(d) => {
                        // The block itself comes by broadcast; ask only for
                        // ancestors, or when the broadcast is late.
                        if d != digest || self.context.current() >= self.patience(digest) {
                            self.request(d);
                        }
                        still.push((context, response));
                    }
                }
            }
            if !still.is_empty() {
                self.waiting.insert(digest, still);
            }
        }
    }

    /// Queues an admitted transaction for the other validators.
    pub(super) fn gossip(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("admitted transactions are small");
        self.outbox.extend_from_slice(&len.to_be_bytes());
        self.outbox.extend_from_slice(bytes);
        self.outbox_count += 1;
        if self.outbox_count >= GOSSIP_BATCH_MAX {
            self.flush();
        } else if self.flush_at.is_none() {
            self.flush_at = Some(self.context.current() + GOSSIP_DELAY);
        }
    }

    /// Sends the queued transactions in one message.
    pub(super) fn flush(&mut self) {
        self.flush_at = None;
        if self.outbox_count == 0 {
            return;
        }
        let mut message = Vec::with_capacity(1 + self.outbox.len());
        message.push(TAG_TXS);
        message.append(&mut self.outbox);
        self.outbox_count = 0;
        let _ = self.blocks_out.send(Recipients::All, message, false);
    }

    /// Admits `txs` to the mempool, their signatures checked in one batch,
    /// and, if `pass_on`, queues the newly admitted ones for the other
    /// validators.
    pub(super) fn admit(
        &mut self,
        txs: Vec<SignedTransaction>,
        pass_on: bool,
    ) -> Vec<Result<Hash, AdmitError>> {
        let now = self.now();
        let fresh: Vec<Option<Vec<u8>>> = txs
            .iter()
            .map(|tx| (pass_on && !self.mempool.verified(tx)).then(|| tx.to_bytes()))
            .collect();
        // A used nonce whose transaction is this very one, final and on its
        // way to the store, is a repeated submission: harmless, as the
        // node API answers it once the block is stored.
        let repeats: Vec<Option<(Hash, bool)>> = txs
            .iter()
            .map(|tx| {
                let used = tx.tx.nonce < self.base_ledger.next_nonce(&tx.tx.signer);
                used.then(|| (tx.hash(), self.store.holds_unstored(tx)))
            })
            .collect();
        let mut results: Vec<Result<Hash, AdmitError>> = if txs.len() == 1 {
            // One signature alone checks faster than a batch of one.
            txs.into_iter()
                .map(|tx| self.mempool.admit(tx, &self.base_ledger, now))
                .collect()
        } else {
            self.mempool
                .admit_batch(txs, &self.base_ledger, now, self.context.as_mut())
        };
        for (result, repeat) in results.iter_mut().zip(&repeats) {
            if let (Err(AdmitError::NonceUsed { .. }), Some((hash, true))) = (&result, repeat) {
                *result = Ok(*hash);
            }
        }
        for ((result, bytes), repeat) in results.iter().zip(fresh).zip(&repeats) {
            if let (Ok(_), Some(bytes), None) = (result, bytes, repeat) {
                self.gossip(&bytes);
            }
        }
        results
    }

    /// Admits the transactions a peer passed on; never passes them on again.
    pub(super) fn receive_txs(&mut self, txs: Vec<SignedTransaction>) {
        if self.admit(txs, false).iter().any(Result::is_ok) {
            self.propose_pending();
        }
    }

    /// Asks a committee member for the finalized blocks after this node's
    /// last one, if this node does not vote in the current epoch (it
    /// follows), has finalized nothing for a while (it may have slept
    /// through an epoch change, whose engine its peers have stopped), or has
    /// been missing an ancestor of a block it knows is final.
    pub(super) fn sync(&mut self) {
        let idle = self
            .context
            .current()
            .duration_since(self.progress)
            .unwrap_or_default();
        // Or it knows a later block is final but cannot get a block before
        // it: a busy node's inbound queues drop messages, and fetching by
        // height with a certificate does not depend on any one of them.
        let stuck = self.stuck_since.is_some_and(|since| {
            self.context
                .current()
                .duration_since(since)
                .unwrap_or_default()
                >= RETRY
        });
        if self.member() && idle < SYNC_AFTER && !stuck {
            return;
        }
        let others: Vec<ConsensusKey> = self
            .base_ledger
            .committee()
            .members
            .0
            .iter()
            .filter(|m| m.key != self.me)
            .filter_map(|m| consensus_key(&m.key))
            .collect();
        if others.is_empty() {
            return;
        }
        self.sync_turn = self.sync_turn.wrapping_add(1);
        let turn = if self.member() {
            self.sync_turn
        } else {
            self.sync_turn / FOLLOW_STICKY
        };
        let peer = others[turn % others.len()].clone();
        let mut bytes = vec![TAG_SYNC];
        bytes.extend_from_slice(&self.base_tip.height.to_be_bytes());
        let _ = self.blocks_out.send(Recipients::One(peer), bytes, false);
    }

    /// Answers `peer`'s request for the finalized blocks after `from`: up to
    /// [`ANCESTORS_MAX`] of them, never past the end of `from`'s epoch (the
    /// asker must learn the next committee before it can check the next
    /// epoch's certificates), ending at a block with a certificate of its
    /// own, which goes last. With nothing newer, the request is held until
    /// the next block is finalized here (see [`FOLLOW_SYNC`]).
    pub(super) fn answer_sync(&mut self, peer: ConsensusKey, from: u64) {
        let last = self.base_tip.height;
        if from >= last {
            if self.followers.len() < FOLLOWERS_MAX || self.followers.contains_key(&peer) {
                self.followers.insert(peer, from);
            }
            return;
        }
        let ledger = &self.base_ledger;
        let epoch_end = ledger.epoch_end(ledger.epoch_of(from + 1));
        let end = last.min(from + ANCESTORS_MAX as u64).min(epoch_end);
        let mut found = None;
        for h in (from + 1..=end).rev() {
            if let Some(c) = self.store.certificate(h) {
                found = Some((h, c));
                break;
            }
        }
        let Some((until, certificate)) = found else {
            return;
        };
        for h in from + 1..=until {
            // Sent as stored, not decoded and encoded again.
            let Some(encoded) = self.store.block_bytes(h) else {
                return;
            };
            let _ =
                self.blocks_out
                    .send(Recipients::One(peer.clone()), tagged_block(&encoded), false);
        }
        let mut bytes = Vec::with_capacity(1 + certificate.len());
        bytes.push(TAG_CERTIFICATE);
        bytes.extend_from_slice(&certificate);
        let _ = self.blocks_out.send(Recipients::One(peer), bytes, false);
    }

    /// A peer's finalization certificate: checked against the committee of
    /// the next block's epoch, then treated as the engine's own.
    pub(super) fn receive_certificate(&mut self, bytes: &[u8]) {
        use commonware_consensus::Epochable as _;
        use commonware_cryptography::certificate::Verifier as _;
        use tranche_types::commonware_codec::Decode as _;
        let committee = self.base_ledger.committee().clone();
        let scheme = self.verifier(&committee);
        let Ok(finalization) = Finalization::<Scheme, Digest>::decode_cfg(
            tranche_types::commonware_codec::Copying(bytes),
            &scheme.certificate_codec_config(),
        ) else {
            return;
        };
        if finalization.epoch().get() != committee.epoch
            || !finalization.verify(
                self.context.as_mut(),
                &scheme,
                &commonware_parallel::Sequential,
            )
        {
            return;
        }
        self.finalized(finalization.proposal.payload, bytes.to_vec());
        self.retry_waiting();
    }
}
