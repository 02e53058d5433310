//! The handlers: one per kind of transaction. Each checks everything first
//! and changes the state only once nothing can refuse it any more, so a
//! refused transaction leaves no trace but its nonce.

use crate::compliance::{balance, check, check_receiver, did_of, overflow, token, Mode};
use crate::consent::{check_binding, check_custody_consent, did_key, did_of_key};
use crate::keys::Pair;
use crate::state::{
    Asset, Checkpoint, Claim, Custody, Distribution, Entitlement, Freeze, IssuanceRequest, Lockup,
    Organisation, RevocationRequest, Roles, State, Token, TokenKind, Validator,
};
use crate::{reject, BlockContext, LedgerEvent, TransferKind, TransferRecord};
use tranche_crypto::{verify, Domain};
use tranche_types::commonware_codec::Encode;
use tranche_types::*;

mod admin;
mod agent;
mod assets;
mod audit;
mod ballots;
mod custody;
mod distributions;
mod governance;
mod holds;
mod identity;
mod instructions;
mod issuance;
mod offerings;
mod revocation;
mod settlement;
mod staking;
mod transfers;

pub(crate) use crate::address::{custodial_wallet, revocation_wallet};
use admin::*;
use agent::*;
use assets::*;
use audit::*;
use ballots::*;
pub(crate) use custody::*;
use distributions::*;
pub(crate) use governance::*;
use holds::*;
use identity::*;
use instructions::*;
use issuance::*;
use offerings::*;
use revocation::*;
pub(crate) use settlement::*;
use staking::*;
use transfers::*;

struct Tx<'a> {
    chain_id: &'a ChainId,
    ctx: &'a BlockContext,
    stx: &'a SignedTransaction,
    events: &'a mut Vec<LedgerEvent>,
    /// The transaction's hash, taken once when a first record needs it: an
    /// issuance of 1,000 allocations records 1,000 transfers, and hashing
    /// its 40 KB each time cost more than the rest of applying it.
    hash: std::cell::OnceCell<Hash>,
}

impl Tx<'_> {
    fn signer_wallet(&self) -> WalletAddress {
        self.stx.tx.signer.address()
    }

    fn record(
        &mut self,
        token: &TokenId,
        from: Option<WalletAddress>,
        to: WalletAddress,
        amount: Units,
        kind: TransferKind,
    ) -> &mut TransferRecord {
        self.events.push(LedgerEvent::Transfer(TransferRecord {
            date: self.ctx.date(),
            height: self.ctx.height,
            tx: *self.hash.get_or_init(|| self.stx.hash()),
            token: token.clone(),
            from,
            to,
            amount,
            reference: None,
            kind,
            holder_authorization: None,
            reason: None,
        }));
        match self.events.last_mut() {
            Some(LedgerEvent::Transfer(r)) => r,
            _ => unreachable!("a transfer record was just pushed"),
        }
    }
}

/// The organisation that signed, which must hold `role`.
fn org_with(state: &State, signer: &PublicKey, role: Role) -> Result<OrgId, Rejection> {
    let org = state.org_by_key.get(signer).ok_or_else(|| {
        reject(
            RejectCode::NotAdmitted,
            format!("key {signer} belongs to no admitted organisation"),
        )
    })?;
    if !state.orgs[org].roles.has(role) {
        return Err(reject(
            RejectCode::MissingRole,
            format!("{org} does not hold the {role:?} role"),
        ));
    }
    Ok(org.clone())
}

fn any_org(state: &State, signer: &PublicKey) -> Result<OrgId, Rejection> {
    state.org_by_key.get(signer).cloned().ok_or_else(|| {
        reject(
            RejectCode::NotAdmitted,
            format!("key {signer} belongs to no admitted organisation"),
        )
    })
}

/// Moves units between wallets, keeping the holder count; holds the giver
/// can no longer cover are released (see [`clamp_holds`]).
fn move_units(
    state: &mut State,
    ctx: &BlockContext,
    id: &TokenId,
    from: &WalletAddress,
    to: &WalletAddress,
    amount: Units,
) {
    let rev = revocation_wallet(id);
    let from_before = balance(state, id, from);
    let from_after = from_before
        .checked_sub(amount)
        .expect("the balance was checked before moving");
    set_balance(state, id, from, from_after);
    credit_besides(state, id, to, amount, &rev);
    let t = state.tokens.get_mut(id).expect("the token was checked");
    if from_after.is_zero() && *from != rev {
        t.holders -= 1;
        identity_holding(state, id, from, false);
    }
    if !state.wallet_holds.is_empty() {
        clamp_holds(state, ctx, id, from);
    }
    if !state.lockups.is_empty() {
        clamp_lockup(state, ctx, id, from);
    }
}

/// Adds units to a wallet, keeping the holder count.
fn credit(state: &mut State, id: &TokenId, to: &WalletAddress, amount: Units) {
    credit_besides(state, id, to, amount, &revocation_wallet(id));
}

/// [`credit`], given the token's revocation wallet (which counts for no
/// holder).
fn credit_besides(
    state: &mut State,
    id: &TokenId,
    to: &WalletAddress,
    amount: Units,
    revocation: &WalletAddress,
) {
    let before = balance(state, id, to);
    let after = before
        .checked_add(amount)
        .expect("supply is bounded by issuance");
    set_balance(state, id, to, after);
    if before.is_zero() && to != revocation {
        state.tokens.get_mut(id).expect("the token exists").holders += 1;
        identity_holding(state, id, to, true);
    }
}

/// Keeps the count of identities holding `id` as `wallet` starts (`gains`)
/// or stops holding it: an identity counts while any of its wallets holds.
/// Wallets bound to nobody (escrows, pools) count for no identity.
fn identity_holding(state: &mut State, id: &TokenId, wallet: &WalletAddress, gains: bool) {
    let Some(did) = state.wallets.get(wallet) else {
        return;
    };
    let n = state
        .identity_holdings
        .get(&Pair(id, did))
        .copied()
        .unwrap_or(0);
    let t = state.tokens.get_mut(id).expect("the token exists");
    let n = if gains {
        if n == 0 {
            t.holder_identities += 1;
        }
        n + 1
    } else {
        if n == 1 {
            t.holder_identities -= 1;
        }
        n.checked_sub(1)
            .expect("a wallet that held counted for its identity")
    };
    let did = did.clone();
    if n == 0 {
        state.identity_holdings.remove(&Pair(id, &did));
    } else {
        state.identity_holdings.insert((id.clone(), did), n);
    }
}

fn set_balance(state: &mut State, id: &TokenId, w: &WalletAddress, units: Units) {
    if units.is_zero() {
        state.balances.remove(&Pair(id, w));
    } else if let Some(held) = state.balances.get_mut(&Pair(id, w)) {
        *held = units;
    } else {
        state.balances.insert((id.clone(), *w), units);
    }
}

/// The balances and holder counts a transaction's moves overwrote, so that
/// a transaction that moves several times, each move checked against the
/// state the moves before it left, can put everything back when a later
/// move is refused: a refused transaction still changes nothing.
#[derive(Default)]
struct Undo {
    balances: Vec<(TokenId, WalletAddress, Units)>,
    holders: Vec<(TokenId, u32, u32)>,
    approvals: Vec<(TokenId, WalletAddress, WalletAddress, Units, u32)>,
    freezes: Vec<(TokenId, WalletAddress, Option<Freeze>)>,
    /// The hold tables as they were (a copy costs nothing: they are
    /// persistent maps).
    holds: Option<(HoldsTable, WalletHoldsTable)>,
    lockups: Option<crate::state::Table<(TokenId, WalletAddress), Lockup>>,
    identities: Option<crate::state::Table<(TokenId, Did), u32>>,
    sent: Option<crate::state::Table<(TokenId, Did, u32), Units>>,
}

type HoldsTable = crate::state::Table<RequestId, crate::state::Hold>;
type WalletHoldsTable =
    crate::state::Table<(TokenId, WalletAddress), BoundedVec<RequestId, WALLET_HOLDS_MAX>>;

impl Undo {
    /// Remembers what a move of `id` from `from` to `to` will overwrite.
    fn remember(&mut self, state: &State, id: &TokenId, from: &WalletAddress, to: &WalletAddress) {
        for w in [from, to] {
            self.balances.push((id.clone(), *w, balance(state, id, w)));
        }
        if self.holds.is_none() {
            self.holds = Some((state.holds.clone(), state.wallet_holds.clone()));
            self.lockups = Some(state.lockups.clone());
            self.identities = Some(state.identity_holdings.clone());
            self.sent = Some(state.sent_by_day.clone());
        }
        let freeze = state.freezes.get(&(id.clone(), *from)).cloned();
        self.freezes.push((id.clone(), *from, freeze));
        let t = state.tokens.get(id).expect("the token was checked");
        self.holders
            .push((id.clone(), t.holders, t.holder_identities));
    }

    /// Puts back everything remembered, the oldest value last.
    fn restore(self, state: &mut State) {
        for (id, w, units) in self.balances.into_iter().rev() {
            set_balance(state, &id, &w, units);
        }
        if let Some((holds, listed)) = self.holds {
            state.holds = holds;
            state.wallet_holds = listed;
        }
        if let Some(lockups) = self.lockups {
            state.lockups = lockups;
        }
        if let Some(identities) = self.identities {
            state.identity_holdings = identities;
        }
        if let Some(sent) = self.sent {
            state.sent_by_day = sent;
        }
        for (id, wallet, freeze) in self.freezes.into_iter().rev() {
            match freeze {
                Some(f) => state.freezes.insert((id, wallet), f),
                None => state.freezes.remove(&(id, wallet)),
            };
        }
        for (id, from, to, amount, n) in self.approvals.into_iter().rev() {
            state.transfer_approvals.insert((id, from, to, amount), n);
        }
        for (id, holders, identities) in self.holders.into_iter().rev() {
            let t = state.tokens.get_mut(&id).expect("the token was checked");
            t.holders = holders;
            t.holder_identities = identities;
        }
    }
}

fn sum(allocations: &[Allocation]) -> Result<Units, Rejection> {
    allocations
        .iter()
        .try_fold(Units::ZERO, |a, x| a.checked_add(x.amount))
        .ok_or_else(overflow)
}

fn unique_wallets(allocations: &[Allocation]) -> Result<(), Rejection> {
    let mut seen = std::collections::BTreeSet::new();
    for a in allocations {
        if a.amount.is_zero() {
            return Err(reject(
                RejectCode::ZeroAmount,
                format!("allocation to {} is zero", a.wallet),
            ));
        }
        if !seen.insert(a.wallet) {
            return Err(reject(
                RejectCode::InvalidField,
                format!("wallet {} appears twice in the allocations", a.wallet),
            ));
        }
    }
    Ok(())
}

/// Checks that `from` may give `amount` of cash `id` (balance, freeze,
/// pause) to a wallet of the ledger's own.
fn check_cash_out(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    from: &WalletAddress,
    amount: Units,
) -> Result<(), Rejection> {
    let t = token(state, id)?;
    if t.paused {
        return Err(reject(
            RejectCode::TokenPaused,
            format!("{id} is paused by its issuer"),
        ));
    }
    let freeze = state.freezes.get(&(id.clone(), *from));
    if freeze.is_some_and(|f| f.all) {
        return Err(reject(
            RejectCode::WalletFrozen,
            format!("{from}'s {id} is frozen"),
        ));
    }
    let free = balance(state, id, from)
        .0
        .saturating_sub(freeze.map_or(0, |f| f.amount.0))
        .saturating_sub(crate::compliance::live_holds(state, ctx, id, from).0);
    if free < amount.0 {
        return Err(reject(
            RejectCode::InsufficientBalance,
            format!("{from} has {free} of {id} free; {amount} are needed"),
        ));
    }
    Ok(())
}

/// Refuses to move anything out of `token`'s revocation wallet (L-2, REC-6).
pub(crate) fn refuse_revocation_wallet(
    token: &TokenId,
    from: &WalletAddress,
) -> Result<(), Rejection> {
    if *from == revocation_wallet(token) {
        return Err(reject(
            RejectCode::RevocationWalletLocked,
            format!("{from} is the revocation wallet of {token}; nothing leaves it"),
        ));
    }
    Ok(())
}

fn bind(state: &mut State, wallet: WalletAddress, did: &Did) {
    state.wallets.insert(wallet, did.clone());
    state.did_wallets.insert((did.clone(), wallet), ());
}

fn unknown_asset(id: &AssetId) -> Rejection {
    reject(
        RejectCode::UnknownAsset,
        format!("no asset {id} is registered"),
    )
}

fn agent_event(token: &TokenId, agent: OrgId, action: &str) -> LedgerEvent {
    LedgerEvent::AgentAction {
        token: token.clone(),
        agent,
        action: action.to_string(),
    }
}

/// Changes `wallet`'s freeze for `token` (none yet: nothing frozen), and
/// drops it if nothing is frozen any more.
fn change_freeze(
    state: &mut State,
    token: &TokenId,
    wallet: &WalletAddress,
    change: impl FnOnce(&mut Freeze),
) {
    change(
        state
            .freezes
            .entry((token.clone(), *wallet))
            .or_insert(Freeze {
                all: false,
                amount: Units::ZERO,
            }),
    );
    tidy_freeze(state, token, wallet);
}

/// After units left `wallet` without regard to its freeze (forced, revoked),
/// no more stays frozen than it still holds.
fn clamp_freeze(state: &mut State, token: &TokenId, wallet: &WalletAddress) {
    let left = balance(state, token, wallet);
    if let Some(f) = state.freezes.get_mut(&(token.clone(), *wallet)) {
        f.amount = f.amount.min(left);
    }
    tidy_freeze(state, token, wallet);
}

/// After units left `wallet`: a lock-up past its day is gone, and one the
/// balance no longer covers (the agent took locked units) shrinks to it.
fn clamp_lockup(state: &mut State, ctx: &BlockContext, token: &TokenId, wallet: &WalletAddress) {
    let key = (token.clone(), *wallet);
    let Some(l) = state.lockups.get(&key).cloned() else {
        return;
    };
    let left = balance(state, token, wallet);
    if l.until <= ctx.date() || left.is_zero() {
        state.lockups.remove(&key);
    } else if l.units > left {
        state.lockups.insert(
            key,
            Lockup {
                until: l.until,
                units: left,
            },
        );
    }
}

fn tidy_freeze(state: &mut State, token: &TokenId, wallet: &WalletAddress) {
    let key = (token.clone(), *wallet);
    if state
        .freezes
        .get(&key)
        .is_some_and(|f| !f.all && f.amount.is_zero())
    {
        state.freezes.remove(&key);
    }
}

/// The token's agent (its issuer) must be the signer.
fn agent_of(state: &State, signer: &PublicKey, id: &TokenId) -> Result<OrgId, Rejection> {
    let t = token(state, id)?;
    let org = any_org(state, signer)?;
    if t.issuer != org {
        return Err(reject(
            RejectCode::NotTokenAgent,
            format!("{org} is not the agent of {id}; its issuer {} is", t.issuer),
        ));
    }
    Ok(org)
}

/// The token's TSP must be the signer.
fn tsp_of_token(state: &State, signer: &PublicKey, id: &TokenId) -> Result<OrgId, Rejection> {
    let org = org_with(state, signer, Role::Tsp)?;
    let t = token(state, id)?;
    if t.tsp.as_ref() != Some(&org) {
        return Err(reject(
            RejectCode::NotTheTsp,
            format!("{org} is not the TSP of {id}"),
        ));
    }
    Ok(org)
}

fn unknown_org(org: &OrgId) -> Rejection {
    reject(
        RejectCode::UnknownOrganisation,
        format!("no organisation {org} is admitted"),
    )
}

/// Applies `stx`'s payload, or refuses it without changing the state.
pub(crate) fn execute(
    state: &mut State,
    chain_id: &ChainId,
    ctx: &BlockContext,
    stx: &SignedTransaction,
    events: &mut Vec<LedgerEvent>,
) -> Result<(), Rejection> {
    let mut tx = Tx {
        chain_id,
        ctx,
        stx,
        events,
        hash: std::cell::OnceCell::new(),
    };
    let signer = &stx.tx.signer;
    match &stx.tx.payload {
        Payload::Transfer(p) => transfer(state, &mut tx, p),
        Payload::Govern(p) => govern(state, &mut tx, signer, &p.action),
        Payload::RegisterWallet(p) => register_wallet(state, &mut tx, p),
        Payload::AddClaim(p) => add_claim(state, &mut tx, p),
        Payload::RevokeClaim(p) => revoke_claim(state, &mut tx, p),
        Payload::RegisterAsset(p) => register_asset(state, &mut tx, p),
        Payload::RecordAppraisal(p) => record_appraisal(state, &mut tx, p),
        Payload::RequestIssuance(p) => request_issuance(state, signer, p),
        Payload::ExecuteIssuance(p) => execute_issuance(state, &mut tx, signer, p),
        Payload::WithdrawIssuance(p) => withdraw_issuance(state, signer, p),
        Payload::OpenCustodialWallet(p) => open_custodial_wallet(state, &mut tx, p),
        Payload::CustodialTransfer(p) => custodial_transfer(state, &mut tx, signer, p),
        Payload::SetFrozen(p) => set_frozen(state, &mut tx, p),
        Payload::FreezePartial(p) => freeze_partial(state, &mut tx, p),
        Payload::SetPaused(p) => set_paused(state, &mut tx, p),
        Payload::ForcedTransfer(p) => forced_transfer(state, &mut tx, p),
        Payload::RecoverWallet(p) => recover_wallet(state, &mut tx, p),
        Payload::CreateCheckpoint(p) => create_checkpoint(state, &mut tx, p),
        Payload::DeclareDistribution(p) => declare_distribution(state, signer, p),
        Payload::RecordPayment(p) => record_payment(state, &mut tx, p),
        Payload::RequestRevocation(p) => request_revocation(state, &mut tx, p),
        Payload::ExecuteRevocation(p) => execute_revocation(state, &mut tx, signer, p),
        Payload::IssueCashToken(p) => issue_cash_token(state, &mut tx, p),
        Payload::MintCash(p) => mint_cash(state, &mut tx, p),
        Payload::Settle(p) => settle(state, &mut tx, p),
        Payload::BondValidator(p) => bond_validator(state, &mut tx, p),
        Payload::Delegate(p) => delegate(state, &mut tx, p),
        Payload::Undelegate(p) => undelegate(state, &mut tx, p),
        Payload::AnchorAudit(p) => anchor_audit(state, &tx, p),
        Payload::OpenOffering(p) => open_offering(state, &mut tx, p),
        Payload::Subscribe(p) => subscribe(state, &mut tx, p),
        Payload::CloseOffering(p) => close_offering(state, &mut tx, p),
        Payload::IssueOffering(p) => issue_offering(state, &mut tx, p),
        Payload::ReleaseProceeds(p) => release_proceeds(state, &mut tx, p),
        Payload::FundDistribution(p) => fund_distribution(state, &mut tx, p),
        Payload::ClaimDistribution(p) => claim_distribution(state, &mut tx, p),
        Payload::ReclaimDistribution(p) => reclaim_distribution(state, &mut tx, p),
        Payload::RecordOwnership(p) => record_ownership(state, &tx, p),
        Payload::RedeemCash(p) => redeem_cash(state, &mut tx, p),
        Payload::PublishAmlPolicy(p) => publish_aml_policy(state, &tx, p),
        Payload::SetTokenRules(p) => set_token_rules(state, &mut tx, p),
        Payload::SetRuleChecks(p) => set_rule_checks(state, &mut tx, p),
        Payload::SetTrustedIssuers(p) => set_trusted_issuers(state, &mut tx, p),
        Payload::SetDocument(p) => set_document(state, &mut tx, p),
        Payload::RemoveDocument(p) => remove_document(state, &mut tx, p),
        Payload::ApproveTransfer(p) => approve_transfer(state, &mut tx, p),
        Payload::OpenBallot(p) => open_ballot(state, &mut tx, p),
        Payload::CastVote(p) => cast_vote(state, &mut tx, p),
        Payload::ForcedMoves(p) => forced_moves(state, &mut tx, p),
        Payload::CreateHold(p) => create_hold(state, &mut tx, p),
        Payload::ExecuteHold(p) => execute_hold(state, &mut tx, p),
        Payload::ReleaseHold(p) => release_hold(state, &mut tx, p),
        Payload::CreateInstruction(p) => create_instruction(state, &mut tx, p),
        Payload::AffirmInstruction(p) => affirm_instruction(state, &mut tx, p),
        Payload::CancelInstruction(p) => cancel_instruction(state, &mut tx, p),
        Payload::SetLimitExemption(p) => set_limit_exemption(state, &mut tx, p),
    }
}
