//! The mempool: signed transactions waiting for a block, admitted only if
//! their signature, chain, validity window and nonce make sense now, and
//! bounded in count overall and per signer.

use std::collections::{BTreeMap, HashMap};
use tranche_crypto::rand_core_010::CryptoRng;
use tranche_crypto::TxVerifier;
use tranche_ledger::Ledger;
use tranche_types::{Hash, Payload, PublicKey, SignedTransaction, Timestamp, TX_BYTES_MAX};

/// What a transaction costs a block, in transfers' worth: one, and one more
/// for each allocation or revocation move it carries, which the ledger
/// applies like a transfer each. A block is filled up to its limit of
/// weight, not of count, so that its work stays near that of as many
/// transfers whatever it holds: a block must run well within a leader's
/// timeout, or each leader in turn proposes the same block again and the
/// chain stalls (twenty issuances of 1,000 allocations in one block did).
pub fn weight(stx: &SignedTransaction) -> usize {
    1 + match &stx.tx.payload {
        Payload::RequestIssuance(p) => p.allocations.len(),
        Payload::ExecuteIssuance(p) => p.allocations.len(),
        Payload::ExecuteRevocation(p) => p.moves.len(),
        _ => 0,
    }
}

/// Limits of a mempool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transactions held.
    pub txs_max: usize,
    /// Most transactions held per signer.
    pub per_signer_max: usize,
    /// How far past the signer's next nonce a transaction may be.
    pub nonce_ahead_max: u64,
    /// Most transactions held for an admitted organisation's key: a
    /// service signs for many people (a custodian's transfers, a TSP's
    /// relays, a bank's mintings) and answers for what it sends.
    pub org_per_signer_max: usize,
    /// How far past its next nonce an organisation's transaction may be.
    pub org_nonce_ahead_max: u64,
    /// How far in the future `valid_until` may be, in ms: longer-lived
    /// transactions would pin mempool space.
    pub validity_ms_max: u64,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            txs_max: 100_000,
            per_signer_max: 64,
            nonce_ahead_max: 64,
            org_per_signer_max: 1_024,
            org_nonce_ahead_max: 1_024,
            validity_ms_max: 7 * 86_400_000,
        }
    }
}

/// Why a transaction was not admitted. A resubmission of a held transaction
/// is not an error: it returns the same hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// Larger than any transaction may be.
    #[error("the transaction is {0} bytes; at most {TX_BYTES_MAX} are allowed")]
    TooLarge(usize),
    /// Wrong chain or bad signature.
    #[error("{0}")]
    Invalid(String),
    /// `valid_until` has passed.
    #[error("the transaction expired at {0}")]
    Expired(Timestamp),
    /// `valid_until` is too far ahead.
    #[error("valid_until is more than {0} ms ahead; sign it with a nearer bound")]
    ValidityTooLong(u64),
    /// The nonce is used already.
    #[error("nonce {given} is used already; the signer's next nonce is {next}")]
    NonceUsed {
        /// The nonce given.
        given: u64,
        /// The next unused one.
        next: u64,
    },
    /// The nonce is too far ahead.
    #[error("nonce {given} is too far ahead of the signer's next nonce {next}")]
    NonceTooFar {
        /// The nonce given.
        given: u64,
        /// The next unused one.
        next: u64,
    },
    /// Another transaction holds this signer and nonce.
    #[error("another transaction with this signer and nonce is waiting: {0}")]
    NonceTaken(Hash),
    /// Full, overall or for this signer.
    #[error("the mempool is full ({0}); try again later")]
    Full(&'static str),
}

/// What the checks before the signature found.
enum Precheck {
    /// Exactly this transaction waits already.
    Held(Hash),
    /// New, and admissible if its signature verifies, while its signer
    /// holds fewer than this many.
    New(Hash, usize),
}

/// Transactions waiting for a block.
#[derive(Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    /// Never iterated: its order cannot leak into blocks.
    by_hash: HashMap<Hash, SignedTransaction>,
    /// Each waiting transaction's hash and deadline, by signer and nonce.
    by_signer: BTreeMap<(PublicKey, u64), (Hash, Timestamp)>,
    verifier: TxVerifier,
}

impl Mempool {
    /// An empty mempool with `limits`.
    pub fn new(limits: MempoolLimits) -> Mempool {
        Mempool {
            limits,
            ..Mempool::default()
        }
    }

    /// How many transactions wait.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether the transaction with `hash` waits.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Whether exactly `stx`, signature and all, waits here: its signature
    /// was checked when it was admitted.
    pub fn verified(&self, stx: &SignedTransaction) -> bool {
        self.holds(&stx.hash(), stx)
    }

    /// Whether `stx`, whose hash is `hash`, waits here with its signature.
    fn holds(&self, hash: &Hash, stx: &SignedTransaction) -> bool {
        self.by_hash
            .get(hash)
            .is_some_and(|held| held.signature == stx.signature)
    }

    /// The signature checker this mempool uses (it remembers signer keys).
    pub fn verifier(&mut self) -> &mut TxVerifier {
        &mut self.verifier
    }

    /// Admits `stx` if it could go into a block on top of `ledger` at `now`;
    /// returns its hash. Submitting the same transaction again is harmless.
    pub fn admit(
        &mut self,
        stx: SignedTransaction,
        ledger: &Ledger,
        now: Timestamp,
    ) -> Result<Hash, AdmitError> {
        let (hash, cap) = match self.precheck(&stx, ledger, now)? {
            Precheck::Held(hash) => return Ok(hash),
            Precheck::New(hash, cap) => (hash, cap),
        };
        // The signature last: it is the dearest check.
        self.verifier
            .verify(&stx, ledger.chain_id())
            .map_err(|e| AdmitError::Invalid(e.to_string()))?;
        self.insert(hash, stx, cap)
    }

    /// Admits many transactions at once, as [`Self::admit`] would one by
    /// one, but checks their signatures in one batch (`rng` draws its
    /// coefficients). Returns one result per transaction, in order.
    pub fn admit_batch(
        &mut self,
        stxs: Vec<SignedTransaction>,
        ledger: &Ledger,
        now: Timestamp,
        rng: impl CryptoRng,
    ) -> Vec<Result<Hash, AdmitError>> {
        let mut results: Vec<Result<Hash, AdmitError>> = Vec::with_capacity(stxs.len());
        let mut fresh = Vec::new();
        let mut copies = Vec::new();
        // The first fresh transaction of the batch for each signer and nonce.
        let mut firsts: BTreeMap<(PublicKey, u64), (usize, Hash)> = BTreeMap::new();
        for (i, stx) in stxs.iter().enumerate() {
            match self.precheck(stx, ledger, now) {
                Ok(Precheck::Held(hash)) => results.push(Ok(hash)),
                Ok(Precheck::New(hash, cap)) => {
                    // Two of the batch may share a signer and nonce: the
                    // second is taken as `admit` would take it after the first.
                    match firsts.get(&(stx.tx.signer, stx.tx.nonce)) {
                        Some(&(j, other))
                            if other == hash && stxs[j].signature == stx.signature =>
                        {
                            // The same transaction twice: the same answer.
                            copies.push((i, j));
                            results.push(Ok(hash))
                        }
                        Some(&(_, other)) => results.push(Err(AdmitError::NonceTaken(other))),
                        None => {
                            firsts.insert((stx.tx.signer, stx.tx.nonce), (i, hash));
                            fresh.push((i, hash, cap));
                            results.push(Ok(hash));
                        }
                    }
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let chain = ledger.chain_id();
        let all_good = self
            .verifier
            .verify_batch(fresh.iter().map(|&(i, _, _)| &stxs[i]), chain, rng)
            .is_ok();
        let mut stxs: Vec<Option<SignedTransaction>> = stxs.into_iter().map(Some).collect();
        for (i, hash, cap) in fresh {
            let stx = stxs[i].take().expect("each index is taken once");
            if !all_good {
                // Find which: one by one.
                if let Err(e) = self.verifier.verify(&stx, chain) {
                    results[i] = Err(AdmitError::Invalid(e.to_string()));
                    continue;
                }
            }
            results[i] = self.insert(hash, stx, cap);
        }
        for (i, j) in copies {
            results[i] = results[j].clone();
        }
        results
    }

    /// Every check of [`Self::admit`] but the signature.
    fn precheck(
        &self,
        stx: &SignedTransaction,
        ledger: &Ledger,
        now: Timestamp,
    ) -> Result<Precheck, AdmitError> {
        let size = stx.to_bytes().len();
        if size > TX_BYTES_MAX {
            return Err(AdmitError::TooLarge(size));
        }
        let hash = stx.hash();
        if self.holds(&hash, stx) {
            return Ok(Precheck::Held(hash));
        }
        let tx = &stx.tx;
        if &tx.chain_id != ledger.chain_id() {
            return Err(AdmitError::Invalid(format!(
                "the transaction is for chain {:?}, not {:?}",
                tx.chain_id.to_string(),
                ledger.chain_id().to_string()
            )));
        }
        if tx.valid_until < now {
            return Err(AdmitError::Expired(tx.valid_until));
        }
        if tx.valid_until.0.saturating_sub(now.0) > self.limits.validity_ms_max {
            return Err(AdmitError::ValidityTooLong(self.limits.validity_ms_max));
        }
        let next = ledger.next_nonce(&tx.signer);
        let (ahead_max, cap) = if ledger.organisation_of_key(&tx.signer).is_some() {
            (
                self.limits.org_nonce_ahead_max,
                self.limits.org_per_signer_max,
            )
        } else {
            (self.limits.nonce_ahead_max, self.limits.per_signer_max)
        };
        if tx.nonce < next {
            return Err(AdmitError::NonceUsed {
                given: tx.nonce,
                next,
            });
        }
        if tx.nonce - next > ahead_max {
            return Err(AdmitError::NonceTooFar {
                given: tx.nonce,
                next,
            });
        }
        if let Some((other, _)) = self.by_signer.get(&(tx.signer, tx.nonce)) {
            return Err(AdmitError::NonceTaken(*other));
        }
        Ok(Precheck::New(hash, cap))
    }

    /// Holds a transaction whose every check passed, room permitting.
    fn insert(
        &mut self,
        hash: Hash,
        stx: SignedTransaction,
        cap: usize,
    ) -> Result<Hash, AdmitError> {
        if self.by_hash.len() >= self.limits.txs_max {
            return Err(AdmitError::Full("overall"));
        }
        let tx = &stx.tx;
        if let Some((other, _)) = self.by_signer.get(&(tx.signer, tx.nonce)) {
            return Err(AdmitError::NonceTaken(*other));
        }
        let waiting = self
            .by_signer
            .range((tx.signer, 0)..=(tx.signer, u64::MAX))
            .count();
        if waiting >= cap {
            return Err(AdmitError::Full("for this signer"));
        }
        self.by_signer
            .insert((tx.signer, tx.nonce), (hash, tx.valid_until));
        self.by_hash.insert(hash, stx);
        Ok(hash)
    }

    /// Transactions that can follow `ledger`'s state in order, up to `max`
    /// of [`weight`]: for each signer, the run of consecutive nonces from
    /// its next one. Signers are taken in key order, one transaction each
    /// in turn, so no signer can crowd out the others; a signer whose next
    /// transaction does not fit in what is left gives way for this block.
    pub fn select(&self, ledger: &Ledger, max: usize) -> Vec<SignedTransaction> {
        let mut runs: Vec<Vec<&SignedTransaction>> = Vec::new();
        let mut signer: Option<PublicKey> = None;
        for ((key, nonce), (hash, _)) in &self.by_signer {
            if signer != Some(*key) {
                signer = Some(*key);
                runs.push(Vec::new());
            }
            let run = runs.last_mut().expect("a run was just started");
            let expected = ledger.next_nonce(key) + run.len() as u64;
            if *nonce == expected {
                run.push(&self.by_hash[hash]);
            }
        }
        let mut out = Vec::with_capacity(max.min(self.by_hash.len()));
        let mut used = 0;
        let mut stopped = vec![false; runs.len()];
        let mut depth = 0;
        while used < max {
            let mut any = false;
            for (run, stopped) in runs.iter().zip(stopped.iter_mut()) {
                let Some(stx) = run.get(depth).filter(|_| !*stopped) else {
                    continue;
                };
                let w = weight(stx);
                // Heavier than a whole block, it goes in one of its own.
                if used + w > max && used > 0 {
                    *stopped = true;
                    continue;
                }
                any = true;
                used += w;
                out.push((*stx).clone());
            }
            if !any {
                break;
            }
            depth += 1;
        }
        out
    }

    /// Drops what `ledger` has made stale: used nonces and expired bounds.
    pub fn prune(&mut self, ledger: &Ledger, now: Timestamp) {
        let mut stale = Vec::new();
        // Each signer's next nonce looked up once for its whole run.
        let mut next: Option<(PublicKey, u64)> = None;
        for (&(key, nonce), &(_, valid_until)) in &self.by_signer {
            let n = match next {
                Some((k, n)) if k == key => n,
                _ => {
                    let n = ledger.next_nonce(&key);
                    next = Some((key, n));
                    n
                }
            };
            if nonce < n || valid_until < now {
                stale.push((key, nonce));
            }
        }
        for key in stale {
            if let Some((hash, _)) = self.by_signer.remove(&key) {
                self.by_hash.remove(&hash);
            }
        }
    }
}
