//! The application's loop: proposing, verifying and finalizing blocks, and
//! announcing each epoch it reaches.

use super::*;

impl<E, S, R, A> Application<E, S, R, A>
where
    E: Clock + Spawner + Metrics + CryptoRng,
    S: Sender<PublicKey = ConsensusKey>,
    R: Receiver<PublicKey = ConsensusKey>,
    A: Archive,
{
    /// A node's application, starting from `start` (genesis, or what it
    /// finalized before a restart), signing blocks as `me`, checking votes
    /// in the consensus `namespace`, sending and receiving blocks on
    /// `blocks`, committing finalized blocks to `archive` and then reporting
    /// them on `observer` (should the archive fail, it says why on
    /// `store_failed` and stores nothing more). Each epoch it reaches is announced on the
    /// receiver returned, for the orchestrator to run that epoch's engine.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    pub fn new(
        context: E,
        me: PublicKey,
        namespace: &[u8],
        start: Start,
        archive: A,
        blocks: (S, R),
        observer: mpsc::Sender<Finalized>,
        store_failed: oneshot::Sender<String>,
    ) -> (Self, Mailbox, Reporter, watch::Receiver<Option<EpochStart>>) {
        let (sender, receiver) = mailbox::new(
            context.child("inbox"),
            NonZeroUsize::new(ENGINE_MESSAGES_MAX).expect("a positive limit"),
        );
        let (submissions, submitted) = mpsc::channel(SUBMISSIONS_QUEUED_MAX);
        let (epochs, epochs_out) = watch::channel(None);
        let progress = context.current();
        let genesis = genesis_digest(start.ledger.chain_id());
        let base = if start.tip.height == 0 {
            genesis
        } else {
            digest_of(&start.tip.hash)
        };
        let store = Stored::start(context.child("writer"), archive, observer, store_failed);
        let app = Application {
            context: ContextCell::new(context),
            me,
            namespace: namespace.to_vec(),
            verifiers: BTreeMap::new(),
            offences: Vec::new(),
            certificates: HashMap::new(),
            announced: None,
            epochs,
            progress,
            stuck_since: None,
            sync_turn: 0,
            followers: BTreeMap::new(),
            mailbox: receiver,
            submissions: submitted,
            sent: None,
            blocks_out: blocks.0,
            blocks_in: blocks.1,
            store,
            limits: BlockLimits::default(),
            genesis,
            base,
            base_ledger: Arc::new(start.ledger),
            base_tip: start.tip,
            known: HashMap::new(),
            received: HashMap::new(),
            waiting: HashMap::new(),
            target: None,
            requested: HashMap::new(),
            mempool: Mempool::new(MempoolLimits::default()),
            pending: None,
            outbox: Vec::new(),
            outbox_count: 0,
            flush_at: None,
            misbehaviour: start.misbehaviour,
            chain_ahead_ms: VecDeque::new(),
        };
        (
            app,
            Mailbox {
                sender: sender.clone(),
                submissions,
            },
            Reporter { sender },
            epochs_out,
        )
    }

    /// A verifier of `committee`'s votes and certificates.
    pub(super) fn verifier(&mut self, committee: &Committee) -> Scheme {
        if let Some(s) = self.verifiers.get(&committee.epoch) {
            return s.clone();
        }
        let scheme = Scheme::verifier(&self.namespace, participants(committee));
        // An epoch's evidence and certificates are checked during it and
        // the next; older verifiers are not needed.
        while self.verifiers.len() >= 4 {
            self.verifiers.pop_first();
        }
        self.verifiers.insert(committee.epoch, scheme.clone());
        scheme
    }

    /// Whether this node votes in the epoch of the next block.
    pub(super) fn member(&self) -> bool {
        self.base_ledger
            .committee()
            .members
            .0
            .iter()
            .any(|m| m.key == self.me)
    }

    /// Tells the orchestrator when the next block's epoch is a new one.
    pub(super) fn announce_epoch(&mut self) {
        if self.announced == Some(self.base_ledger.committee().epoch) {
            return;
        }
        let committee = self.base_ledger.committee().clone();
        let first =
            self.base_ledger.epoch_end(committee.epoch) - self.base_ledger.params().epoch_blocks;
        let floor = if first == 0 {
            self.genesis
        } else if first == self.base_tip.height {
            self.base
        } else {
            let block = self
                .store
                .block(first)
                .expect("the blocks before the last finalized one are stored");
            digest_of(&block.hash())
        };
        self.announced = Some(committee.epoch);
        self.epochs.send_replace(Some(EpochStart {
            epoch: committee.epoch,
            committee,
            floor,
        }));
    }

    /// Runs the actor until the runtime stops.
    pub fn start(mut self) -> Handle<()> {
        // On a thread of its own where the runtime has threads: it computes
        // (signature checks, execution) between awaits, and flooded with
        // transactions it would hold a runtime worker for long stretches,
        // starving the engine's actors queued on that worker (a proposal
        // once waited 0.9 s to be voted on, and the view timed out).
        let context = self.context.take().dedicated();
        context.spawn(move |context| {
            self.context.restore(context);
            self.run()
        })
    }

    /// This validator's own clock, in ms since 1970 (the runtime's, moved
    /// by a simulated skew).
    fn clock_ms(&self) -> i128 {
        let ms = self
            .context
            .current()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        i128::try_from(ms).unwrap_or(i128::MAX) + i128::from(self.skew_ms())
    }

    /// How far this validator's clock is behind the chain's, in ms: the
    /// least that each of the last [`CLOCK_SAMPLES`] blocks finalized here
    /// was ahead of its clock when it became final, or nothing. Honest
    /// leaders' blocks, timed by honest clocks, are in the past on a right
    /// clock, and a window of that many always holds some: a Byzantine
    /// leader's block timed ahead cannot move it.
    pub(super) fn behind_ms(&self) -> u64 {
        self.chain_ahead_ms
            .iter()
            .min()
            .map_or(0, |ms| u64::try_from(*ms).unwrap_or(0))
    }

    /// The chain's time as this validator reckons it: its clock, moved on by
    /// [`Self::behind_ms`]. A clock behind would otherwise take every block
    /// as from its future and refuse it; one ahead is not moved back (its
    /// own proposals are refused as from the future, as they should be).
    pub(super) fn now(&self) -> Timestamp {
        let ms = self.clock_ms() + i128::from(self.behind_ms());
        Timestamp(u64::try_from(ms.max(0)).unwrap_or(u64::MAX))
    }

    /// Takes the times of blocks just finalized as samples of the chain's
    /// time against this validator's clock.
    fn sample_clock(&mut self, times: &[Timestamp]) {
        let clock = self.clock_ms();
        for t in times {
            let ahead = i128::from(t.0) - clock;
            self.chain_ahead_ms
                .push_back(i64::try_from(ahead).unwrap_or(if ahead < 0 {
                    i64::MIN
                } else {
                    i64::MAX
                }));
        }
        while self.chain_ahead_ms.len() > CLOCK_SAMPLES {
            self.chain_ahead_ms.pop_front();
        }
    }

    /// The tip and ledger after the block with `digest`, if known.
    pub(super) fn state_after(&self, digest: &Digest) -> Option<(Tip, &Arc<Ledger>)> {
        if *digest == self.base {
            return Some((self.base_tip, &self.base_ledger));
        }
        self.known.get(digest).map(|k| (k.tip, &k.ledger))
    }

    /// Answers a request to propose now, or holds it back (see
    /// [`EMPTY_BLOCK_INTERVAL`]) while there is nothing to include.
    pub(super) fn on_propose(
        &mut self,
        context: Context<Digest, ConsensusKey>,
        response: oneshot::Sender<Digest>,
    ) {
        let parent = context.parent.1;
        // The parent may have been received without this validator voting on it.
        match self.resolve(parent) {
            Resolved::Valid => {}
            Resolved::Missing(d) => {
                self.request(d);
                return;
            }
            Resolved::Invalid => return,
        }
        let Some((tip, ledger)) = self.state_after(&parent) else {
            return;
        };
        let epoch = context.round.epoch().get();
        if tip.height >= ledger.epoch_end(epoch) {
            // The epoch's last block is made: propose it again until it is
            // finalized, which ends the epoch.
            response.send_lossy(parent);
            return;
        }
        if ledger.epoch_of(tip.height + 1) != epoch {
            return;
        }
        let parent_time = UNIX_EPOCH + Duration::from_millis(tip.time.0);
        if self.context.current() < self.proposal_due(parent_time) {
            self.pending = Some((context, response, parent_time));
            return;
        }
        if let Some(digest) = self.propose(&context) {
            response.send_lossy(digest);
        }
    }

    /// When a block on a parent made at `parent_time` is due: after
    /// [`MIN_BLOCK_INTERVAL`] if there is something to include, else after
    /// [`EMPTY_BLOCK_INTERVAL`].
    pub(super) fn proposal_due(&self, parent_time: SystemTime) -> SystemTime {
        let due = if self.mempool.is_empty() {
            parent_time + EMPTY_BLOCK_INTERVAL
        } else {
            parent_time + MIN_BLOCK_INTERVAL
        };
        // In the chain's time; back to the runtime's clock.
        let shift = self.skew_ms().saturating_add_unsigned(self.behind_ms());
        if shift >= 0 {
            due.checked_sub(Duration::from_millis(shift.unsigned_abs()))
                .unwrap_or(UNIX_EPOCH)
        } else {
            due + Duration::from_millis(shift.unsigned_abs())
        }
    }

    /// Proposes the held-back block once it is due (sooner if something to
    /// include has arrived).
    pub(super) fn propose_pending(&mut self) {
        let ready = match &self.pending {
            Some((_, response, parent_time)) => {
                response.is_closed() || self.context.current() >= self.proposal_due(*parent_time)
            }
            None => false,
        };
        if !ready {
            return;
        }
        let Some((context, response, _)) = self.pending.take() else {
            return;
        };
        if response.is_closed() {
            return;
        }
        if let Some(digest) = self.propose(&context) {
            response.send_lossy(digest);
        }
    }

    /// Builds, executes and keeps a block on the (resolved) parent.
    pub(super) fn propose(&mut self, context: &Context<Digest, ConsensusKey>) -> Option<Digest> {
        let parent = context.parent.1;
        let now = self.now();
        let (tip, ledger) = self.state_after(&parent)?;
        let started = self.context.current();
        let block = tranche_block::build(ledger, &tip, &self.mempool, self.me, now, &self.limits)
            .with_evidence(tranche_block::select_evidence(ledger, &self.offences));
        let (block, second) = self.spoil(block, ledger);
        let digest = digest_of(&block.hash());
        if let Some(second) = second {
            let other = digest_of(&second.hash());
            let _ = self
                .blocks_out
                .send(Recipients::All, block_message(&second), true);
            self.remember(other, parent, second);
            self.record_pair(digest, other);
        }
        let (height, txs) = (block.header.height, block.txs.len());
        // Sent now rather than when the engine asks: the others can start
        // checking it while this validator's vote is on its way.
        let _ = self
            .blocks_out
            .send(Recipients::All, block_message(&block), true);
        self.sent = Some(digest);
        self.remember(digest, parent, block);
        tracing::debug!(
            height,
            txs,
            ms = ms_between(started, self.context.current()),
            "proposed"
        );
        Some(digest)
    }

    /// Executes `block` on its parent's state and keeps it with the result.
    /// The parent's state must be known.
    pub(super) fn remember(&mut self, digest: Digest, parent: Digest, block: Block) {
        let (_, ledger) = self
            .state_after(&parent)
            .expect("a block is remembered only once its parent's state is known");
        let mut after = Ledger::clone(ledger);
        let executed = tranche_block::execute(&mut after, &block);
        self.known.insert(
            digest,
            Known {
                parent,
                tip: Tip::of(&block),
                block,
                receipts: executed.receipts,
                events: executed.events,
                state_root: executed.state_root,
                ledger: Arc::new(after),
            },
        );
    }

    /// The digest of a block's parent: the genesis digest for the first block.
    pub(super) fn parent_digest(&self, block: &Block) -> Digest {
        if block.header.height == 1 {
            self.genesis
        } else {
            digest_of(&block.header.parent)
        }
    }

    /// Verifies and executes the received block `digest` and any received
    /// ancestors it needs (a validator may have skipped voting on them, or
    /// fetched them after being down). Iterative: a validator catching up
    /// may resolve thousands of blocks at once.
    pub(super) fn resolve(&mut self, digest: Digest) -> Resolved {
        self.resolve_certified(digest, false)
    }

    /// [`Self::resolve`]; if `certified`, `digest` is final by a
    /// certificate this node checked, so its blocks' transaction signatures
    /// need no checking here (see [`tranche_block::verify_certified`]).
    pub(super) fn resolve_certified(&mut self, digest: Digest, certified: bool) -> Resolved {
        let mut path = Vec::new();
        let mut cursor = digest;
        while cursor != self.base && !self.known.contains_key(&cursor) {
            let Some(block) = self.received.get(&cursor) else {
                return Resolved::Missing(cursor);
            };
            if block.header.height <= self.base_tip.height {
                // On a branch that finalization has already excluded.
                return Resolved::Invalid;
            }
            path.push(cursor);
            cursor = self.parent_digest(block);
        }
        let now = self.now();
        for digest in path.into_iter().rev() {
            let Some(block) = self.received.get(&digest).cloned() else {
                return Resolved::Invalid;
            };
            let parent = self.parent_digest(&block);
            let Some((tip, ledger)) = self
                .state_after(&parent)
                .map(|(tip, ledger)| (tip, Arc::clone(ledger)))
            else {
                return Resolved::Invalid;
            };
            let verdict = if certified {
                tranche_block::verify_certified(&block, &tip, &ledger, &self.limits)
            } else {
                tranche_block::verify(
                    &block,
                    &tip,
                    &ledger,
                    now,
                    &self.limits,
                    &mut self.mempool,
                    self.context.as_mut(),
                )
            };
            // Evidence is checked against the committee of its epoch (the
            // block's or the one before; verification saw to that).
            let committees: Vec<Option<Committee>> = block
                .evidence
                .iter()
                .map(|e| ledger.committee_of(e.epoch).cloned())
                .collect();
            let evidence_ok = block.evidence.iter().zip(committees).all(|(e, c)| {
                c.is_some_and(|c| {
                    let scheme = self.verifier(&c);
                    evidence_holds(e, &scheme, self.context.as_mut())
                })
            });
            if let Err(e) = &verdict {
                tracing::warn!(
                    height = block.header.height,
                    proposer = %block.header.proposer,
                    reason = %e,
                    "refused a block"
                );
            } else if !evidence_ok {
                tracing::warn!(
                    height = block.header.height,
                    proposer = %block.header.proposer,
                    "refused a block: its evidence does not hold"
                );
            }
            if verdict.is_err() || !evidence_ok {
                // Never worth looking at again.
                self.received.remove(&digest);
                return Resolved::Invalid;
            }
            self.remember(digest, parent, block);
        }
        Resolved::Valid
    }

    /// Judges the block `digest` for `context`: it builds on the parent
    /// consensus names, belongs to the context's epoch, and is valid. The
    /// epoch's last block proposed again (see [`Self::on_propose`]) is
    /// valid too.
    pub(super) fn judge(
        &mut self,
        context: &Context<Digest, ConsensusKey>,
        digest: Digest,
    ) -> Resolved {
        let epoch = context.round.epoch().get();
        let reproposal = digest == context.parent.1;
        if !reproposal {
            let parent = match (self.received.get(&digest), self.known.get(&digest)) {
                (_, Some(k)) => Some(k.parent),
                (Some(block), None) => Some(self.parent_digest(block)),
                (None, None) => None,
            };
            if parent.is_some_and(|p| p != context.parent.1) {
                return Resolved::Invalid;
            }
        }
        let resolved = self.resolve(digest);
        if resolved != Resolved::Valid {
            return resolved;
        }
        let Some((tip, ledger)) = self.state_after(&digest) else {
            return Resolved::Invalid;
        };
        let fits = if reproposal {
            tip.height == ledger.epoch_end(epoch)
        } else {
            ledger.epoch_of(tip.height) == epoch
        };
        if fits {
            Resolved::Valid
        } else {
            Resolved::Invalid
        }
    }

    /// Logs (at debug) a step of the known block `digest`, with the time
    /// since its proposal: where a block's latency goes.
    pub(super) fn trace_known(&self, digest: &Digest, step: &str) {
        if let Some(k) = self.known.get(digest) {
            tracing::debug!(
                height = k.tip.height,
                since_made_ms = since(k.tip.time, self.context.current()),
                "{step}"
            );
        }
    }

    /// When to stop waiting for a proposal's broadcast and ask for it.
    pub(super) fn patience(&mut self, digest: Digest) -> SystemTime {
        let now = self.context.current();
        *self.requested.entry(digest).or_insert(now) + RETRY
    }

    /// Applies finalized blocks up to the target, fetching what is missing.
    pub(super) fn finalize(&mut self) {
        let Some(target) = self.target else {
            return;
        };
        // A quorum certified the target final: it and its ancestors were
        // checked by honest members before they voted.
        match self.resolve_certified(target, true) {
            Resolved::Valid => {}
            Resolved::Missing(d) => {
                self.stuck_since.get_or_insert(self.context.current());
                self.request(d);
                return;
            }
            Resolved::Invalid => {
                // Only a block on an abandoned branch gets here: a block
                // certified final by a quorum verifies on every honest node.
                self.target = None;
                return;
            }
        }
        self.target = None;
        // The newly final chain, newest first, back to the last final block.
        let mut chain = Vec::new();
        let mut cursor = target;
        while cursor != self.base {
            let k = &self.known[&cursor];
            chain.push(cursor);
            cursor = k.parent;
        }
        let mut finals = Vec::with_capacity(chain.len());
        for digest in chain.into_iter().rev() {
            let k = self
                .known
                .remove(&digest)
                .expect("every block on the final chain is known");
            self.base = digest;
            self.base_tip = k.tip;
            self.base_ledger = Arc::clone(&k.ledger);
            finals.push(Final {
                hash: Hash(digest.0),
                certificate: self.certificates.remove(&digest),
                finalized: Finalized {
                    state_root: k.state_root,
                    block: k.block,
                    receipts: k.receipts,
                    events: k.events,
                    ledger: k.ledger,
                },
            });
        }
        let times: Vec<Timestamp> = finals
            .iter()
            .map(|f| f.finalized.block.header.time)
            .collect();
        self.sample_clock(&times);
        self.store.store(finals);
        self.progress = self.context.current();
        self.stuck_since = None;
        self.announce_epoch();
        let now = self.now();
        self.mempool.prune(&self.base_ledger, now);
        let ledger = &self.base_ledger;
        self.offences.retain(|e| ledger.check_offence(e).is_ok());
        // Blocks at or below the final height can never be built on again.
        let height = self.base_tip.height;
        self.known.retain(|_, k| k.tip.height > height);
        self.received.retain(|_, b| b.header.height > height);
        let horizon = self.context.current() - RETRY * 4;
        self.requested.retain(|_, t| *t > horizon);
        // Those waiting for a block after their last hear of it now.
        for (peer, from) in std::mem::take(&mut self.followers) {
            self.answer_sync(peer, from);
        }
    }

    /// A finalization certificate for `payload` arrived.
    pub(super) fn finalized(&mut self, payload: Digest, certificate: Vec<u8>) {
        let known_final = payload == self.base
            || payload == self.genesis
            || self.store.block_by_hash(&Hash(payload.0)).is_some();
        if known_final {
            return;
        }
        if self.certificates.len() >= CERTIFICATES_MAX {
            // Only from a peer feeding certificates of blocks that never come.
            self.certificates.clear();
        }
        self.certificates.insert(payload, certificate);
        // Finalizations come in view order; the newest covers the rest.
        self.target = Some(payload);
        self.finalize();
    }

    pub(super) async fn run(mut self) {
        self.announce_epoch();
        let mut tick = self.context.current() + RETRY;
        select_loop! {
            self.context,
            on_start => {
                if self.store.backlog() >= UNSTORED_BLOCKS_MAX {
                    // Backpressure: the disk is behind; take nothing more
                    // (no votes, no blocks) until it catches up.
                    let started = self.context.current();
                    self.store.room().await;
                    tracing::warn!(
                        waited_ms = ms_between(started, self.context.current()),
                        "the chain store fell {UNSTORED_BLOCKS_MAX} blocks behind; waited for it"
                    );
                }
                let mut wake = match &self.pending {
                    Some((_, _, parent_time)) => tick.min(self.proposal_due(*parent_time)),
                    None => tick,
                };
                if let Some(at) = self.flush_at {
                    wake = wake.min(at);
                }
            },
            on_stopped => {},
            Some(message) = self.mailbox.recv() else break => {
                match message {
                    Message::Propose { context, response } => {
                        self.on_propose(context, response);
                    }
                    Message::Verify { context, payload, response } => {
                        {
                            let started = self.context.current();
                            let verdict = self.judge(&context, payload);
                            tracing::debug!(
                                view = context.round.view().get(),
                                verdict = ?verdict,
                                ms = ms_between(started, self.context.current()),
                                "verify"
                            );
                            match verdict {
                                Resolved::Valid => {
                                    response.send_lossy(true);
                                }
                                Resolved::Invalid => {
                                    response.send_lossy(false);
                                }
                                Resolved::Missing(d) => {
                                    if d != payload {
                                        self.request(d);
                                    } else {
                                        self.patience(payload);
                                    }
                                    self.waiting.entry(payload).or_default().push((context, response));
                                }
                            }
                        }
                    }
                    Message::Broadcast { payload } => {
                        // A block proposed here went out already (see
                        // `propose`); the epoch's last block proposed again
                        // did not.
                        let unsent = self.sent != Some(payload);
                        if let Some(k) = self.known.get(&payload).filter(|_| unsent) {
                            let bytes = block_message(&k.block);
                            let _ = self.blocks_out.send(Recipients::All, bytes, true);
                        }
                    }
                    Message::Finalized { payload, certificate } => {
                        self.trace_known(&payload, "finalization reported");
                        self.finalized(payload, certificate);
                        self.retry_waiting();
                    }
                    Message::Offence { activity } => self.on_offence(&activity),
                }
            },
            Ok((peer, bytes)) = self.blocks_in.recv() else break => {
                match wire::parse(bytes.as_ref()) {
                    Some(Inbound::Block(block)) if block.header.height > self.base_tip.height => {
                        tracing::debug!(
                            height = block.header.height,
                            txs = block.txs.len(),
                            since_made_ms = since(block.header.time, self.context.current()),
                            "block received"
                        );
                        let digest = digest_of(&block.hash());
                        self.received.insert(digest, *block);
                        self.finalize();
                        self.retry_waiting();
                    }
                    Some(Inbound::Txs(txs)) => self.receive_txs(txs),
                    Some(Inbound::Request { digest, floor }) => self.answer(peer, digest, floor),
                    Some(Inbound::Sync(from)) => self.answer_sync(peer, from),
                    Some(Inbound::Certificate(rest)) => self.receive_certificate(rest),
                    // A block already final here, or noise from a faulty peer.
                    Some(Inbound::Block(_)) | None => {}
                }
            },
            Some(Submission { txs, response }) = self.submissions.recv() else break => {
                let results = self.admit(txs, true);
                response.send_lossy(results);
                self.propose_pending();
            },
            _ = self.context.sleep_until(wake) => {
                if self.flush_at.is_some_and(|at| self.context.current() >= at) {
                    self.flush();
                }
                if self.context.current() >= tick {
                    let every = if self.member() { RETRY } else { FOLLOW_SYNC };
                    tick = self.context.current() + every;
                    self.finalize();
                    self.retry_waiting();
                    self.sync();
                }
                self.propose_pending();
            },
        }
    }
}
