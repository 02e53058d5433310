//! Applies signed transactions to the security-token ledger: organisations and
//! roles, identities and claims, assets, issuance, compliant transfers,
//! custody, agent powers, distributions, revocation, settlement and staking.
//!
//! Pure and deterministic: no IO, no clock, no randomness. The block's height
//! and time come in through [`BlockContext`]; the same transactions applied to
//! the same genesis give the same state root. The Merkle tree's nodes that
//! a node's store already holds are read through a [`TreeStore`] the caller
//! gives; without one the whole tree is held in memory, with the same roots.
//!
//! Invariants, checked after every transaction in debug builds
//! ([`Ledger::check_invariants`]) and by property tests:
//! - per token, the balances add up to what was issued, and the revocation
//!   wallet holds exactly what was revoked;
//! - an executed issuance issued exactly the sum of its allocations;
//! - nothing ever leaves a revocation wallet;
//! - no wallet has more of a token frozen than it holds;
//! - no organisation is an issuer and also a TSP or an exchange.
//!
//! A refused transaction changes nothing but its signer's nonce, and its
//! receipt carries a stable reject code and a message a person can act on.

mod address;
mod apply;
pub mod auth;
mod compliance;
mod consent;
mod invariants;
mod keys;
mod query;
mod query_admin;
mod records;
mod state;
mod stored;
mod tree_key;
mod tree_nodes;

pub use auth::{NodeRow, ProofError, StateProof};
pub use compliance::HolderSide;
pub use state::{
    AmlPolicyVersion, Asset, AuditAnchor, Ballot, ChainParams, Checkpoint, Claim, Committee,
    Custody, Distribution, DistributionFunds, Document, DocumentChange, Entitlement, Equivocation,
    Freeze, Hold, HoldState, Instruction, InstructionState, IssuanceRequest, Lockup, Member,
    Offering, OfferingPhase, Organisation, Ownership, ProofRequestError, RevocationRequest, Roles,
    Row, RuleVersion, State, StateTree, Subscription, Table, Token, TokenKind, Validator, Vote,
};
pub use stored::{StateRows, StateTreeNodes};
pub use tranche_types::{
    IssuanceCheck, RevocationCheck, TokenSupply, TransferKind, TransferRecord,
};
pub use tree_nodes::{stored_root, TreeStore};

use serde::{Deserialize, Serialize};
use tranche_types::{
    BoundedVec, ChainId, ClaimTopic, Date, Did, Evidence, Hash, NetworkPolicy, OffenceKind, OrgId,
    Outcome, PublicKey, RejectCode, Rejection, RequestId, Role, SignedTransaction, Stake,
    Timestamp, TokenId, WalletAddress,
};

/// Where in the chain a transaction is applied: the only clock the ledger has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockContext {
    /// The block's height.
    pub height: u64,
    /// The time its proposer stamped.
    pub time: Timestamp,
}

impl BlockContext {
    /// The calendar day of the block.
    pub fn date(&self) -> Date {
        self.time.date()
    }
}

/// The most validators a committee may have.
pub const COMMITTEE_MAX: usize = 32;
/// Blocks per epoch unless the genesis says otherwise.
pub const EPOCH_BLOCKS_DEFAULT: u64 = 1_000;
/// The fewest blocks an epoch may have.
pub const EPOCH_BLOCKS_MIN: u64 = 4;

/// A founding organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisOrganisation {
    /// Its id.
    pub org: OrgId,
    /// Its signing key.
    pub key: PublicKey,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Whether it governs. Founders usually do.
    pub governor: bool,
    /// Its stake units, for bonding and delegating (a decimal string).
    #[serde(default)]
    pub stake: Stake,
    /// Of `stake`, the units it bonds as a validator from the start, behind
    /// its own key (needs the validator role).
    #[serde(default)]
    pub bond: Stake,
}

/// The ledger's first state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The chain.
    pub chain_id: ChainId,
    /// The founding organisations.
    pub organisations: Vec<GenesisOrganisation>,
    /// Blocks per epoch (default 1,000): the committee is elected again
    /// after every block whose height is a multiple of this.
    #[serde(default)]
    pub epoch_blocks: Option<u64>,
    /// The most validators in a committee (default and most: 32).
    #[serde(default)]
    pub committee_max: Option<u32>,
    /// How far, in basis points of an asset's asking price, its appraisal
    /// may differ for it to be tokenized (SR-6; default 500, at most
    /// 10,000). Governance changes it later.
    #[serde(default)]
    pub appraisal_tolerance_bps: Option<u16>,
}

/// Why a genesis is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid genesis: {0}")]
pub struct GenesisError(pub String);

/// What a transaction did besides changing balances, for the record (REC-9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LedgerEvent {
    /// Tokens moved.
    Transfer(TransferRecord),
    /// A governance action reached its quorum and took effect.
    GovernanceExecuted {
        /// The action's digest.
        action: Hash,
    },
    /// A governance vote was counted.
    GovernanceVote {
        /// The action's digest.
        action: Hash,
        /// The voter.
        org: OrgId,
        /// Votes so far.
        votes: u32,
        /// Votes needed.
        quorum: u32,
    },
    /// An agent power was used on a token, by whom.
    AgentAction {
        /// The token.
        token: TokenId,
        /// The agent organisation.
        agent: OrgId,
        /// Which power.
        action: String,
    },
    /// An epoch ended: the committee of the next one was elected (C-2).
    CommitteeElected {
        /// The new epoch.
        epoch: u64,
        /// Its members.
        members: Vec<Member>,
    },
    /// A validator's equivocation was recorded and its bond slashed (C-2).
    Slashed {
        /// The offending organisation.
        org: OrgId,
        /// Its consensus key.
        key: PublicKey,
        /// What it did.
        kind: OffenceKind,
        /// The consensus view of the offence.
        view: u64,
        /// The bonded stake it lost.
        slashed: Stake,
    },
}

/// The result of applying one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Applied, or rejected with the reason.
    pub outcome: Outcome,
    /// What it recorded.
    pub events: Vec<LedgerEvent>,
}

/// The ledger: its chain, its state.
#[derive(Clone, Debug)]
pub struct Ledger {
    chain_id: ChainId,
    state: State,
}

pub(crate) fn reject(code: RejectCode, message: impl Into<String>) -> Rejection {
    Rejection::new(code, message)
}

impl Ledger {
    /// The ledger at genesis.
    pub fn genesis(genesis: &Genesis) -> Result<Ledger, GenesisError> {
        let mut state = State::default();
        if genesis.organisations.is_empty() {
            return Err(GenesisError(
                "at least one founding organisation is needed".into(),
            ));
        }
        if !genesis.organisations.iter().any(|o| o.governor) {
            return Err(GenesisError(
                "at least one founding organisation must govern".into(),
            ));
        }
        for o in &genesis.organisations {
            let mut roles = Roles::default();
            for r in &o.roles {
                roles = roles.with(*r);
            }
            if apply::violates_separation(roles) {
                return Err(GenesisError(format!(
                    "{} would be an issuer and also a TSP or an exchange (SR-1, SR-2, REC-1)",
                    o.org
                )));
            }
            if state.orgs.contains_key(&o.org) {
                return Err(GenesisError(format!("{} is listed twice", o.org)));
            }
            if state.org_by_key.insert(o.key, o.org.clone()).is_some() {
                return Err(GenesisError(format!("{}'s key is used twice", o.org)));
            }
            state.orgs.insert(
                o.org.clone(),
                Organisation {
                    key: o.key,
                    roles,
                    governor: o.governor,
                },
            );
            if o.bond > o.stake {
                return Err(GenesisError(format!(
                    "{} would bond {} of its {} stake",
                    o.org, o.bond, o.stake
                )));
            }
            if !o.bond.is_zero() {
                if !roles.has(Role::Validator) {
                    return Err(GenesisError(format!(
                        "{} bonds stake but is not a validator",
                        o.org
                    )));
                }
                state.validators.insert(
                    o.org.clone(),
                    state::Validator {
                        consensus_key: o.key,
                        bonded: o.bond,
                        delegated: Stake::ZERO,
                        tombstoned: false,
                    },
                );
            }
            if let Some(free) = o.stake.checked_sub(o.bond).filter(|f| !f.is_zero()) {
                state.stake.insert(o.org.clone(), free);
            }
        }
        let epoch_blocks = genesis.epoch_blocks.unwrap_or(EPOCH_BLOCKS_DEFAULT);
        if !(EPOCH_BLOCKS_MIN..=1_000_000_000).contains(&epoch_blocks) {
            return Err(GenesisError(format!(
                "epoch_blocks must be {EPOCH_BLOCKS_MIN} to 1000000000, not {epoch_blocks}"
            )));
        }
        let committee_max = genesis.committee_max.unwrap_or(COMMITTEE_MAX as u32);
        if !(1..=COMMITTEE_MAX as u32).contains(&committee_max) {
            return Err(GenesisError(format!(
                "committee_max must be 1 to {COMMITTEE_MAX}, not {committee_max}"
            )));
        }
        let tolerance = genesis
            .appraisal_tolerance_bps
            .unwrap_or(NetworkPolicy::TOLERANCE_BPS_DEFAULT);
        if tolerance > NetworkPolicy::TOLERANCE_BPS_MAX {
            return Err(GenesisError(format!(
                "appraisal_tolerance_bps must be at most {}, not {tolerance}",
                NetworkPolicy::TOLERANCE_BPS_MAX
            )));
        }
        state.params = ChainParams {
            epoch_blocks,
            committee_max,
            policy: NetworkPolicy {
                appraisal_tolerance_bps: tolerance,
            },
        };
        let mut ledger = Ledger {
            chain_id: genesis.chain_id.clone(),
            state,
        };
        // Empty when no organisation validates: a ledger for study or
        // benchmarks, on which a node refuses to start.
        let members = ledger.next_committee();
        ledger.state.committee = Committee {
            epoch: 0,
            members: BoundedVec::new(members).expect("at most committee_max members"),
        };
        Ok(ledger)
    }

    /// The state's canonical encoding, for storage to persist.
    pub fn snapshot(&self) -> Vec<u8> {
        self.state.to_bytes()
    }

    /// The ledger of `chain_id` from a snapshot written by [`Ledger::snapshot`].
    pub fn restore(
        chain_id: ChainId,
        snapshot: &[u8],
    ) -> Result<Ledger, tranche_types::DecodeError> {
        let state = State::from_bytes(snapshot)?;
        let ledger = Ledger { chain_id, state };
        Ok(ledger)
    }

    /// The ledger a store's rows hold (see [`State::rows`]).
    pub fn from_rows<'r>(
        chain_id: ChainId,
        rows: impl IntoIterator<Item = (&'r str, &'r [u8], &'r [u8])>,
    ) -> Result<Ledger, tranche_types::DecodeError> {
        Ok(Ledger {
            chain_id,
            state: State::from_rows(rows)?,
        })
    }

    /// The ledger a store holds: its records (decoded with [`StateRows`]),
    /// the Merkle tree it kept as of an earlier version (decoded with
    /// [`StateTreeNodes`]) and the records changed since (`dirty`: table
    /// and key), with the tree as stored (see [`State::with_stored_tree`]).
    pub fn from_parts<'r>(
        chain_id: ChainId,
        state: State,
        stored: StateTree,
        dirty: impl IntoIterator<Item = (&'r str, &'r [u8])>,
    ) -> Result<(Ledger, StateTree), tranche_types::DecodeError> {
        let (state, tree) = state.with_stored_tree(stored, dirty)?;
        Ok((Ledger { chain_id, state }, tree))
    }

    /// The ledger a store's checkpoint holds: its records (decoded with
    /// [`StateRows`]) and the Merkle tree `store` holds, read from it as
    /// it is needed (see [`State::with_tree_in`]).
    pub fn in_store(
        chain_id: ChainId,
        state: State,
        store: std::sync::Arc<dyn TreeStore>,
    ) -> Result<(Ledger, StateTree), tranche_types::DecodeError> {
        let (state, tree) = state.with_tree_in(store)?;
        Ok((Ledger { chain_id, state }, tree))
    }

    /// The chain this ledger belongs to.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The state, read-only.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The state root (see [`State::root`]).
    pub fn state_root(&self) -> Hash {
        self.state.root(&self.chain_id)
    }

    /// A proof of the record `key` (canonical bytes) of the state's table
    /// `table`, present or absent, against [`Ledger::state_root`].
    pub fn prove(&self, table: &str, key: &[u8]) -> Result<StateProof, ProofRequestError> {
        self.state.prove(&self.chain_id, table, key)
    }

    /// A proof of `wallet`'s balance of `token` (absent: none).
    pub fn prove_balance(&self, token: &TokenId, wallet: &WalletAddress) -> StateProof {
        self.prove_key("balances", &(token.clone(), *wallet))
    }

    /// A proof of the issuance request `request` and what came of it.
    pub fn prove_issuance(&self, request: &RequestId) -> StateProof {
        self.prove_key("issuances", request)
    }

    /// A proof of the revocation request `request` and what came of it.
    pub fn prove_revocation(&self, request: &RequestId) -> StateProof {
        self.prove_key("revocations", request)
    }

    /// A proof of the claim `issuer` made about `did` on `topic` (its digest).
    pub fn prove_claim(&self, did: &Did, topic: ClaimTopic, issuer: &OrgId) -> StateProof {
        self.prove_key("claims", &(did.clone(), topic, issuer.clone()))
    }

    /// A proof of the custody binding of the custodial wallet `wallet`.
    pub fn prove_custody(&self, wallet: &WalletAddress) -> StateProof {
        self.prove_key("custody", wallet)
    }

    fn prove_key(
        &self,
        table: &str,
        key: &impl tranche_types::commonware_codec::Write,
    ) -> StateProof {
        let mut bytes = Vec::new();
        key.write(&mut bytes);
        self.prove(table, &bytes)
            .expect("a typed key of a table the state has")
    }

    /// The chain's consensus parameters.
    pub fn params(&self) -> &ChainParams {
        &self.state.params
    }

    /// The committee of the epoch the next block belongs to.
    pub fn committee(&self) -> &Committee {
        &self.state.committee
    }

    /// The epoch of the block at `height` (heights start at 1).
    pub fn epoch_of(&self, height: u64) -> u64 {
        height.saturating_sub(1) / self.state.params.epoch_blocks
    }

    /// The last height of `epoch`.
    pub fn epoch_end(&self, epoch: u64) -> u64 {
        (epoch + 1).saturating_mul(self.state.params.epoch_blocks)
    }

    /// Who would sit on a committee elected now: the election of bonded
    /// validators (see [`Ledger::elect`]), or, on a chain where nobody has
    /// bonded, every organisation holding the validator role and never
    /// caught equivocating, each signing with its own key.
    pub fn next_committee(&self) -> Vec<Member> {
        let max = self.state.params.committee_max as usize;
        let elected: Vec<Member> = self
            .elect(max)
            .into_iter()
            .map(|(org, key, _)| Member { org, key })
            .collect();
        if !elected.is_empty() {
            return elected;
        }
        let punished: std::collections::BTreeSet<&OrgId> =
            self.state.equivocations.values().map(|e| &e.org).collect();
        self.state
            .orgs
            .iter()
            .filter(|(org, o)| o.roles.has(Role::Validator) && !punished.contains(org))
            .take(max)
            .map(|(org, o)| Member {
                org: org.clone(),
                key: o.key,
            })
            .collect()
    }

    /// Ends a block: after the last block of an epoch, elects the next
    /// epoch's committee. Should the election find nobody, the committee
    /// stays as it is, so the chain never stops for want of validators.
    pub fn finish_block(&mut self, ctx: &BlockContext) -> Option<LedgerEvent> {
        let length = self.state.params.epoch_blocks;
        if ctx.height == 0 || !ctx.height.is_multiple_of(length) {
            return None;
        }
        let epoch = ctx.height / length;
        let mut members = self.next_committee();
        if members.is_empty() {
            members = self.state.committee.members.0.clone();
        }
        let next = Committee {
            epoch,
            members: BoundedVec::new(members.clone()).expect("at most committee_max members"),
        };
        self.state.previous_committee = std::mem::replace(&mut self.state.committee, next);
        Some(LedgerEvent::CommitteeElected { epoch, members })
    }

    /// The committee of `epoch`, if it is the current or the previous one:
    /// the epochs whose offences may be recorded.
    pub fn committee_of(&self, epoch: u64) -> Option<&Committee> {
        let s = &self.state;
        if epoch == s.committee.epoch {
            Some(&s.committee)
        } else if epoch + 1 == s.committee.epoch && !s.previous_committee.members.0.is_empty() {
            Some(&s.previous_committee)
        } else {
            None
        }
    }

    /// Whether `evidence` can be recorded on this state: it is of the current
    /// epoch or the one before, names a member of that epoch's committee,
    /// and its offence in that view is not yet recorded. That its proof
    /// holds is for consensus to check, which knows the committee's keys.
    pub fn check_offence(&self, evidence: &Evidence) -> Result<OrgId, Rejection> {
        let Some(committee) = self.committee_of(evidence.epoch) else {
            return Err(reject(
                RejectCode::InvalidField,
                format!(
                    "evidence of epoch {} is too old to record in epoch {}",
                    evidence.epoch, self.state.committee.epoch
                ),
            ));
        };
        let Some(member) = committee
            .members
            .0
            .iter()
            .find(|m| m.key == evidence.offender)
        else {
            return Err(reject(
                RejectCode::UnknownValidator,
                format!(
                    "{} did not vote in epoch {}",
                    evidence.offender, evidence.epoch
                ),
            ));
        };
        if self.state.equivocations.contains_key(&evidence.offence()) {
            return Err(reject(
                RejectCode::OffenceRecorded,
                format!(
                    "{} is already punished for view {} of epoch {}",
                    evidence.offender, evidence.view, evidence.epoch
                ),
            ));
        }
        Ok(member.org.clone())
    }

    /// Records an equivocation (C-2): the offender loses its whole bond
    /// (burned) and is tombstoned, so it is never elected again. Delegations
    /// to it stay with their delegators, who may withdraw them.
    pub fn record_offence(
        &mut self,
        ctx: &BlockContext,
        evidence: &Evidence,
    ) -> Result<LedgerEvent, Rejection> {
        let org = self.check_offence(evidence)?;
        let slashed = match self.state.validators.get_mut(&org) {
            Some(v) => {
                v.tombstoned = true;
                std::mem::take(&mut v.bonded)
            }
            None => Stake::ZERO,
        };
        self.state.equivocations.insert(
            evidence.offence(),
            Equivocation {
                org: org.clone(),
                kind: evidence.kind,
                height: ctx.height,
                slashed,
                evidence: Hash::digest(
                    b"tranche/evidence-item/v1",
                    &tranche_types::commonware_codec::Encode::encode(evidence),
                ),
            },
        );
        Ok(LedgerEvent::Slashed {
            org,
            key: evidence.offender,
            kind: evidence.kind,
            view: evidence.view,
            slashed,
        })
    }

    /// Verifies the signature, then applies the transaction.
    pub fn apply(&mut self, ctx: &BlockContext, stx: &SignedTransaction) -> Applied {
        if let Err(e) = tranche_crypto::verify_transaction(stx, &self.chain_id) {
            let code = match e {
                tranche_crypto::VerifyError::WrongChain { .. } => RejectCode::WrongChain,
                tranche_crypto::VerifyError::Signature(_) => RejectCode::BadSignature,
            };
            return Applied {
                outcome: Outcome::Rejected(reject(code, e.to_string())),
                events: Vec::new(),
            };
        }
        self.apply_verified(ctx, stx)
    }

    /// Applies a transaction whose signature the caller has verified (for
    /// example with batch verification over a whole block).
    pub fn apply_verified(&mut self, ctx: &BlockContext, stx: &SignedTransaction) -> Applied {
        let mut events = Vec::new();
        let outcome = match self.envelope(ctx, stx) {
            Err(r) => Outcome::Rejected(r),
            Ok(()) => {
                // The nonce is used whatever the outcome, so a refused
                // transaction cannot be replayed.
                self.state.nonces.insert(stx.tx.signer, stx.tx.nonce);
                match apply::execute(&mut self.state, &self.chain_id, ctx, stx, &mut events) {
                    Ok(()) => Outcome::Applied,
                    Err(r) => {
                        events.clear();
                        Outcome::Rejected(r)
                    }
                }
            }
        };
        #[cfg(debug_assertions)]
        self.check_invariants();
        Applied { outcome, events }
    }

    fn envelope(&self, ctx: &BlockContext, stx: &SignedTransaction) -> Result<(), Rejection> {
        let tx = &stx.tx;
        if tx.chain_id != self.chain_id {
            return Err(reject(
                RejectCode::WrongChain,
                format!(
                    "transaction is for chain {}, this is {}",
                    tx.chain_id, self.chain_id
                ),
            ));
        }
        if ctx.time > tx.valid_until {
            return Err(reject(
                RejectCode::Expired,
                format!("valid until {}, block time is {}", tx.valid_until, ctx.time),
            ));
        }
        let last = self.state.nonces.get(&tx.signer).copied().unwrap_or(0);
        if tx.nonce != last + 1 {
            return Err(reject(
                RejectCode::BadNonce,
                format!(
                    "nonce {} given; the signer's next nonce is {}",
                    tx.nonce,
                    last + 1
                ),
            ));
        }
        Ok(())
    }
}
