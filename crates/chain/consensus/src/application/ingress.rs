//! What the engine, the reporter and clients send the application: its
//! messages and the mailbox they go through, and what it reports.

use super::*;

/// What the engine, the reporter and clients ask of the application.
#[derive(Debug)]
pub enum Message {
    /// Build a block for this context.
    Propose {
        /// The round and parent.
        context: Context<Digest, ConsensusKey>,
        /// Where the block's digest goes.
        response: oneshot::Sender<Digest>,
    },
    /// Judge another validator's block.
    Verify {
        /// The round and parent.
        context: Context<Digest, ConsensusKey>,
        /// The block's digest.
        payload: Digest,
        /// The verdict.
        response: oneshot::Sender<bool>,
    },
    /// Send our proposed block's contents to the other validators.
    Broadcast {
        /// The block's digest.
        payload: Digest,
    },
    /// A block was finalized.
    Finalized {
        /// Its digest.
        payload: Digest,
        /// The finalization certificate, in the engine's encoding.
        certificate: Vec<u8>,
    },
    /// The engine caught a validator signing conflicting votes.
    Offence {
        /// The engine's evidence.
        activity: Activity<Scheme, Digest>,
    },
}

/// Transactions a client submits, and where their answers go. Kept apart
/// from the engine's messages, which go first: a vote waiting behind a queue
/// of signature checks slows every block.
#[derive(Debug)]
pub(super) struct Submission {
    pub(super) txs: Vec<SignedTransaction>,
    pub(super) response: oneshot::Sender<Vec<Result<Hash, AdmitError>>>,
}

/// The handle the engine and clients use.
#[derive(Clone, Debug)]
pub struct Mailbox {
    pub(super) sender: mailbox::Sender<Message>,
    pub(super) submissions: mpsc::Sender<Submission>,
}

impl Mailbox {
    /// Submits a transaction to this validator's mempool.
    pub async fn submit(&self, tx: SignedTransaction) -> Result<Hash, AdmitError> {
        self.submit_batch(vec![tx])
            .await
            .pop()
            .unwrap_or(Err(AdmitError::Full("the validator is shutting down")))
    }

    /// Submits transactions to this validator's mempool at once (their
    /// signatures are checked in one batch); one answer per transaction,
    /// in order, as if submitted one by one.
    pub async fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash, AdmitError>> {
        let count = txs.len();
        let (response, receiver) = oneshot::channel();
        if let Err(e) = self.submissions.try_send(Submission { txs, response }) {
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the validator's submission queue is full",
                mpsc::error::TrySendError::Closed(_) => "the validator is shutting down",
            };
            return vec![Err(AdmitError::Full(why)); count];
        }
        receiver.await.unwrap_or_else(|_| {
            vec![Err(AdmitError::Full("the validator is shutting down")); count]
        })
    }
}

impl Automaton for Mailbox {
    type Digest = Digest;
    type Context = Context<Digest, ConsensusKey>;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        // A full inbox keeps it in its overflow (see `inbox`).
        let _ = self.sender.enqueue(Message::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        let _ = self.sender.enqueue(Message::Verify {
            context,
            payload,
            response,
        });
        receiver
    }
}

// Finalization follows notarization directly: a verified block is final
// enough to vote on.
impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = ConsensusKey;
    type Plan = Plan<ConsensusKey>;

    fn broadcast(&mut self, payload: Digest, _plan: Self::Plan) -> Feedback {
        self.sender.enqueue(Message::Broadcast { payload })
    }
}

/// Hears the engine's certificates; passes finalizations to the application.
#[derive(Clone, Debug)]
pub struct Reporter {
    pub(super) sender: mailbox::Sender<Message>,
}

impl commonware_consensus::Reporter for Reporter {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Activity::Finalization(f) => {
                // Also the engine's own replay after a restart: the
                // application ignores what it has already finalized.
                self.sender.enqueue(Message::Finalized {
                    payload: f.proposal.payload,
                    certificate: tranche_types::commonware_codec::Encode::encode(&f).to_vec(),
                })
            }
            Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_) => self.sender.enqueue(Message::Offence { activity }),
            _ => Feedback::Ok,
        }
    }
}

/// A block this validator finalized, as the application reports it.
#[derive(Clone, Debug)]
pub struct Finalized {
    /// The block.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// What the ledger recorded while applying it (transfers among them).
    pub events: Vec<LedgerEvent>,
    /// The state root after it.
    pub state_root: Hash,
    /// The ledger after it.
    pub ledger: Arc<Ledger>,
}

/// Where a validator starts: the last block it finalized and the ledger
/// after it (genesis for a new validator).
#[derive(Clone, Debug)]
pub struct Start {
    /// The last finalized block ([`Tip::GENESIS`] for none).
    pub tip: Tip,
    /// The ledger after it.
    pub ledger: Ledger,
    /// How it departs from the protocol: never, but in simulations.
    pub(super) misbehaviour: super::Misbehaviour,
}

impl Start {
    /// A validator with nothing finalized yet.
    pub fn genesis(ledger: Ledger) -> Start {
        Start::at(Tip::GENESIS, ledger)
    }

    /// A validator whose last finalized block is `tip`, with `ledger` after it.
    pub fn at(tip: Tip, ledger: Ledger) -> Start {
        Start {
            tip,
            ledger,
            misbehaviour: super::Misbehaviour::None,
        }
    }

    /// The same start for a validator that misbehaves (simulations only).
    pub fn misbehaving(self, misbehaviour: super::Misbehaviour) -> Start {
        Start {
            misbehaviour,
            ..self
        }
    }
}
