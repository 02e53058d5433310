//! The handlers: one per kind of transaction. Each checks everything first
//! and changes the state only once nothing can refuse it any more, so a
//! refused transaction leaves no trace but its nonce.

use crate::compliance::{balance, check, check_receiver, did_of, overflow, token, Mode};
use crate::consent::{check_binding, check_custody_consent, did_key, did_of_key};
use crate::state::{
    Asset, Checkpoint, Claim, Custody, Distribution, Entitlement, Freeze, IssuanceRequest,
    Organisation, RevocationRequest, Roles, State, Token, TokenKind, Validator,
};
use crate::{reject, BlockContext, LedgerEvent, TransferKind, TransferRecord};
use sha2::{Digest, Sha256};
use tranche_crypto::{verify, Domain};
use tranche_types::commonware_codec::Encode;
use tranche_types::*;

/// The wallet a token's revoked units go to (L-2). No key controls it.
pub fn revocation_wallet(token: &TokenId) -> WalletAddress {
    derived(
        b"tranche/revocation-wallet/v1",
        &[token.as_str().as_bytes()],
    )
}

/// The custodial wallet `custodian` keeps for `holder` (SR-3). No key controls it.
pub fn custodial_wallet(custodian: &OrgId, holder: &Did) -> WalletAddress {
    derived(
        b"tranche/custodial-wallet/v1",
        &[custodian.as_str().as_bytes(), holder.as_str().as_bytes()],
    )
}

fn derived(label: &[u8], parts: &[&[u8]]) -> WalletAddress {
    let mut h = Sha256::new();
    h.update(label);
    for p in parts {
        h.update((p.len() as u32).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u8; 20];
    out.copy_from_slice(&d[..20]);
    WalletAddress(out)
}

/// Whether a set of roles breaks separation of duties (SR-1, SR-2, REC-1).
pub fn violates_separation(roles: Roles) -> bool {
    roles.has(Role::Issuer) && (roles.has(Role::Tsp) || roles.has(Role::Exchange))
}

/// The number of governors' votes an action needs: two thirds, rounded up.
pub fn quorum(governors: usize) -> usize {
    (2 * governors).div_ceil(3).max(1)
}

struct Tx<'a> {
    chain_id: &'a ChainId,
    ctx: &'a BlockContext,
    stx: &'a SignedTransaction,
    events: &'a mut Vec<LedgerEvent>,
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
            tx: self.stx.hash(),
            token: token.clone(),
            from,
            to,
            amount,
            reference: None,
            kind,
            custodian_signature: None,
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

/// Moves units between wallets, keeping the holder count.
fn move_units(
    state: &mut State,
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
    credit(state, id, to, amount);
    let t = state.tokens.get_mut(id).expect("the token was checked");
    if from_after.is_zero() && *from != rev {
        t.holders -= 1;
    }
}

/// Adds units to a wallet, keeping the holder count.
fn credit(state: &mut State, id: &TokenId, to: &WalletAddress, amount: Units) {
    let before = balance(state, id, to);
    let after = before
        .checked_add(amount)
        .expect("supply is bounded by issuance");
    set_balance(state, id, to, after);
    if before.is_zero() && *to != revocation_wallet(id) {
        state.tokens.get_mut(id).expect("the token exists").holders += 1;
    }
}

fn set_balance(state: &mut State, id: &TokenId, w: &WalletAddress, units: Units) {
    if units.is_zero() {
        state.balances.remove(&(id.clone(), *w));
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
    holders: Vec<(TokenId, u32)>,
}

impl Undo {
    /// Remembers what a move of `id` from `from` to `to` will overwrite.
    fn remember(&mut self, state: &State, id: &TokenId, from: &WalletAddress, to: &WalletAddress) {
        for w in [from, to] {
            self.balances.push((id.clone(), *w, balance(state, id, w)));
        }
        let holders = state.tokens.get(id).expect("the token was checked").holders;
        self.holders.push((id.clone(), holders));
    }

    /// Puts back everything remembered, the oldest value last.
    fn restore(self, state: &mut State) {
        for (id, w, units) in self.balances.into_iter().rev() {
            set_balance(state, &id, &w, units);
        }
        for (id, holders) in self.holders.into_iter().rev() {
            state
                .tokens
                .get_mut(&id)
                .expect("the token was checked")
                .holders = holders;
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
    };
    let signer = &stx.tx.signer;
    match &stx.tx.payload {
        Payload::Transfer(p) => {
            let from = tx.signer_wallet();
            check(state, ctx, &p.token, &from, &p.to, p.amount, Mode::Holder)?;
            move_units(state, &p.token, &from, &p.to, p.amount);
            tx.record(&p.token, Some(from), p.to, p.amount, TransferKind::Holder)
                .reference = p.reference.clone();
            Ok(())
        }
        Payload::Govern(p) => govern(state, &mut tx, signer, &p.action),
        Payload::RegisterWallet(p) => {
            let org = any_org(state, signer)?;
            let roles = state.orgs[&org].roles;
            if ![
                Role::Tsp,
                Role::Exchange,
                Role::Custodian,
                Role::ClaimIssuer,
            ]
            .iter()
            .any(|r| roles.has(*r))
            {
                return Err(reject(
                    RejectCode::MissingRole,
                    format!("{org} onboards no one: a TSP, exchange, custodian or claim issuer binds wallets"),
                ));
            }
            check_binding(tx.chain_id, p)?;
            if let Some(d) = state.wallets.get(&p.wallet) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("wallet {} is bound to {d} already", p.wallet),
                ));
            }
            bind(state, p.wallet, &p.did);
            Ok(())
        }
        Payload::AddClaim(p) => {
            let org = org_with(state, signer, Role::ClaimIssuer)?;
            did_key(&p.did)?;
            if p.topic == ClaimTopic::JURISDICTION && p.country.is_none() {
                return Err(reject(
                    RejectCode::InvalidField,
                    "a jurisdiction claim needs a country",
                ));
            }
            state.claims.insert(
                (p.did.clone(), p.topic, org),
                Claim {
                    country: p.country,
                    digest: p.digest,
                    expiry_date: p.expiry_date,
                    revoked: false,
                },
            );
            Ok(())
        }
        Payload::RevokeClaim(p) => {
            let org = org_with(state, signer, Role::ClaimIssuer)?;
            let claim = state
                .claims
                .get_mut(&(p.did.clone(), p.topic, org.clone()))
                .ok_or_else(|| {
                    reject(
                        RejectCode::UnknownClaim,
                        format!("{org} has no claim of topic {} about {}", p.topic.0, p.did),
                    )
                })?;
            claim.revoked = true;
            Ok(())
        }
        Payload::RegisterAsset(p) => {
            let org = org_with(state, signer, Role::Tsp)?;
            did_key(&p.owner)?;
            if state.assets.contains_key(&p.asset) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("asset {} exists already", p.asset),
                ));
            }
            if p.price.minor.0 == 0 {
                return Err(reject(
                    RejectCode::ZeroAmount,
                    "the asset's price must be above zero",
                ));
            }
            if p.tolerance_bps > 10_000 {
                return Err(reject(
                    RejectCode::InvalidField,
                    "tolerance_bps is at most 10000 (100%)",
                ));
            }
            state.assets.insert(
                p.asset.clone(),
                Asset {
                    tsp: org,
                    owner: p.owner.clone(),
                    kind: p.kind,
                    description: p.description,
                    price: p.price.clone(),
                    tolerance_bps: p.tolerance_bps,
                    appraiser: None,
                    appraisal: None,
                },
            );
            Ok(())
        }
        Payload::RecordAppraisal(p) => {
            let org = org_with(state, signer, Role::Appraiser)?;
            let asset = state
                .assets
                .get_mut(&p.asset)
                .ok_or_else(|| unknown_asset(&p.asset))?;
            if asset.price.currency != p.value.currency {
                return Err(reject(
                    RejectCode::CurrencyMismatch,
                    format!(
                        "the asset is priced in {}, the appraisal is in {}",
                        asset.price.currency.code(),
                        p.value.currency.code()
                    ),
                ));
            }
            asset.appraiser = Some(org);
            asset.appraisal = Some(p.value.clone());
            Ok(())
        }
        Payload::RequestIssuance(p) => request_issuance(state, signer, p),
        Payload::ExecuteIssuance(p) => execute_issuance(state, &mut tx, signer, p),
        Payload::WithdrawIssuance(p) => withdraw_issuance(state, signer, p),
        Payload::OpenCustodialWallet(p) => {
            let org = org_with(state, signer, Role::Custodian)?;
            check_custody_consent(tx.chain_id, &org, &p.holder, &p.consent)?;
            let wallet = custodial_wallet(&org, &p.holder);
            if state.custody.contains_key(&wallet) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("{org} keeps a wallet for {} already: {wallet}", p.holder),
                ));
            }
            state.custody.insert(
                wallet,
                Custody {
                    custodian: org,
                    holder: p.holder.clone(),
                },
            );
            bind(state, wallet, &p.holder);
            Ok(())
        }
        Payload::CustodialTransfer(p) => custodial_transfer(state, &mut tx, signer, p),
        Payload::SetFrozen(p) => {
            let agent = agent_of(state, signer, &p.token)?;
            let f = state
                .freezes
                .entry((p.token.clone(), p.wallet))
                .or_insert(Freeze {
                    all: false,
                    amount: Units::ZERO,
                });
            f.all = p.frozen;
            tidy_freeze(state, &p.token, &p.wallet);
            tx.events.push(agent_event(
                &p.token,
                agent,
                if p.frozen { "freeze" } else { "unfreeze" },
            ));
            Ok(())
        }
        Payload::FreezePartial(p) => {
            let agent = agent_of(state, signer, &p.token)?;
            let held = balance(state, &p.token, &p.wallet);
            if p.amount > held {
                return Err(reject(
                    RejectCode::InsufficientBalance,
                    format!(
                        "wallet {} holds {held} of {}; cannot freeze {}",
                        p.wallet, p.token, p.amount
                    ),
                ));
            }
            let f = state
                .freezes
                .entry((p.token.clone(), p.wallet))
                .or_insert(Freeze {
                    all: false,
                    amount: Units::ZERO,
                });
            f.amount = p.amount;
            tidy_freeze(state, &p.token, &p.wallet);
            tx.events
                .push(agent_event(&p.token, agent, "freeze_partial"));
            Ok(())
        }
        Payload::SetPaused(p) => {
            let agent = agent_of(state, signer, &p.token)?;
            state
                .tokens
                .get_mut(&p.token)
                .expect("agent_of found it")
                .paused = p.paused;
            tx.events.push(agent_event(
                &p.token,
                agent,
                if p.paused { "pause" } else { "unpause" },
            ));
            Ok(())
        }
        Payload::ForcedTransfer(p) => {
            let agent = agent_of(state, signer, &p.token)?;
            check(state, ctx, &p.token, &p.from, &p.to, p.amount, Mode::Forced)?;
            move_units(state, &p.token, &p.from, &p.to, p.amount);
            // Frozen units that were moved are no longer frozen.
            let left = balance(state, &p.token, &p.from);
            if let Some(f) = state.freezes.get_mut(&(p.token.clone(), p.from)) {
                if f.amount > left {
                    f.amount = left;
                }
            }
            tidy_freeze(state, &p.token, &p.from);
            tx.record(&p.token, Some(p.from), p.to, p.amount, TransferKind::Forced)
                .reason = Some(p.reason.clone());
            tx.events
                .push(agent_event(&p.token, agent, "forced_transfer"));
            Ok(())
        }
        Payload::RecoverWallet(p) => {
            let agent = agent_of(state, signer, &p.token)?;
            refuse_revocation_wallet(&p.token, &p.lost)?;
            let lost_did = did_of(state, &p.lost)?.clone();
            let new_did = did_of(state, &p.new)?;
            if *new_did != lost_did {
                return Err(reject(
                    RejectCode::DifferentIdentity,
                    format!("{} belongs to {lost_did}, {} to {new_did}", p.lost, p.new),
                ));
            }
            let amount = balance(state, &p.token, &p.lost);
            check(
                state,
                ctx,
                &p.token,
                &p.lost,
                &p.new,
                amount,
                Mode::Recovery,
            )?;
            move_units(state, &p.token, &p.lost, &p.new, amount);
            if let Some(f) = state.freezes.remove(&(p.token.clone(), p.lost)) {
                state.freezes.insert((p.token.clone(), p.new), f);
            }
            tx.record(
                &p.token,
                Some(p.lost),
                p.new,
                amount,
                TransferKind::Recovery,
            );
            tx.events
                .push(agent_event(&p.token, agent, "recover_wallet"));
            Ok(())
        }
        Payload::CreateCheckpoint(p) => {
            tsp_of_token(state, signer, &p.token)?;
            let rev = revocation_wallet(&p.token);
            let t = state
                .tokens
                .get_mut(&p.token)
                .expect("tsp_of_token found it");
            t.checkpoints += 1;
            let number = t.checkpoints;
            let held: Vec<(WalletAddress, Units)> = state
                .balances
                .range((p.token.clone(), WalletAddress([0; 20]))..)
                .take_while(|((tk, _), _)| *tk == p.token)
                .filter(|((_, w), _)| *w != rev)
                .map(|((_, w), u)| (*w, *u))
                .collect();
            let mut total = Units::ZERO;
            for (w, u) in held {
                total = total.checked_add(u).expect("supply fits");
                state
                    .checkpoint_balances
                    .insert((p.token.clone(), number, w), u);
            }
            state.checkpoints.insert(
                (p.token.clone(), number),
                Checkpoint {
                    height: ctx.height,
                    total,
                },
            );
            Ok(())
        }
        Payload::DeclareDistribution(p) => declare_distribution(state, signer, p),
        Payload::RecordPayment(p) => {
            let d = state.distributions.get(&p.distribution).ok_or_else(|| {
                reject(
                    RejectCode::UnknownDistribution,
                    format!("no distribution {}", p.distribution),
                )
            })?;
            let org = org_with(state, signer, Role::Tsp)?;
            if d.tsp != org {
                return Err(reject(
                    RejectCode::NotTheTsp,
                    format!("{} declared it, not {org}", d.tsp),
                ));
            }
            let e = state
                .entitlements
                .get_mut(&(p.distribution.clone(), p.wallet))
                .ok_or_else(|| {
                    reject(
                        RejectCode::NoEntitlement,
                        format!("{} is entitled to nothing in {}", p.wallet, p.distribution),
                    )
                })?;
            if e.paid {
                return Err(reject(
                    RejectCode::AlreadyPaid,
                    format!("{} was paid already", p.wallet),
                ));
            }
            e.paid = true;
            Ok(())
        }
        Payload::RequestRevocation(p) => {
            let org = tsp_of_token(state, signer, &p.token)?;
            if state.revocations.contains_key(&p.request)
                || state.issuances.contains_key(&p.request)
            {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("request {} exists already", p.request),
                ));
            }
            let t = token(state, &p.token)?;
            if p.amount.is_zero() {
                return Err(reject(
                    RejectCode::ZeroAmount,
                    "the amount to revoke must be at least 1",
                ));
            }
            if p.amount > t.circulating() {
                return Err(reject(
                    RejectCode::InsufficientBalance,
                    format!(
                        "only {} of {} circulate; {} were asked",
                        t.circulating(),
                        p.token,
                        p.amount
                    ),
                ));
            }
            state.revocations.insert(
                p.request.clone(),
                RevocationRequest {
                    tsp: org,
                    token: p.token.clone(),
                    amount: p.amount,
                    revoked: None,
                },
            );
            Ok(())
        }
        Payload::ExecuteRevocation(p) => execute_revocation(state, &mut tx, signer, p),
        Payload::IssueCashToken(p) => {
            let org = org_with(state, signer, Role::CentralBank)?;
            if p.currency.kind() != CurrencyKind::Cbdc {
                return Err(reject(
                    RejectCode::InvalidField,
                    "a cash token carries a CBDC currency",
                ));
            }
            if state.tokens.contains_key(&p.token) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("token {} exists already", p.token),
                ));
            }
            state.tokens.insert(
                p.token.clone(),
                Token {
                    kind: TokenKind::Cash,
                    issuer: org,
                    tsp: None,
                    asset: None,
                    request: None,
                    unit_price: None,
                    currency: Some(p.currency.clone()),
                    issue_date: ctx.date(),
                    expiry_date: None,
                    issued: Units::ZERO,
                    revoked: Units::ZERO,
                    paused: false,
                    rules: empty_rules(),
                    holders: 0,
                    checkpoints: 0,
                },
            );
            Ok(())
        }
        Payload::MintCash(p) => {
            let org = org_with(state, signer, Role::CentralBank)?;
            let t = token(state, &p.token)?;
            if t.kind != TokenKind::Cash || t.issuer != org {
                return Err(reject(
                    RejectCode::NotTokenAgent,
                    format!("{org} does not issue {}", p.token),
                ));
            }
            if p.amount.is_zero() {
                return Err(reject(RejectCode::ZeroAmount, "mint at least one unit"));
            }
            did_of(state, &p.to)?;
            let issued = t.issued.checked_add(p.amount).ok_or_else(overflow)?;
            state.tokens.get_mut(&p.token).expect("checked").issued = issued;
            credit(state, &p.token, &p.to, p.amount);
            tx.record(&p.token, None, p.to, p.amount, TransferKind::Mint);
            Ok(())
        }
        Payload::Settle(p) => settle(state, &mut tx, p),
        Payload::BondValidator(p) => {
            let org = org_with(state, signer, Role::Validator)?;
            refuse_tombstoned(state, &org)?;
            if !tranche_crypto::is_valid_public_key(&p.consensus_key) {
                return Err(reject(
                    RejectCode::InvalidField,
                    format!("{} is not a usable ed25519 key", p.consensus_key),
                ));
            }
            // One key, one vote: a committee cannot hold a key twice.
            let taken = state
                .validators
                .iter()
                .any(|(o, v)| *o != org && v.consensus_key == p.consensus_key)
                || state
                    .org_by_key
                    .get(&p.consensus_key)
                    .is_some_and(|o| *o != org);
            if taken {
                return Err(reject(
                    RejectCode::ConsensusKeyTaken,
                    format!("{} is another organisation's key", p.consensus_key),
                ));
            }
            take_stake(state, &org, p.amount)?;
            let v = state.validators.entry(org).or_insert(Validator {
                consensus_key: p.consensus_key,
                bonded: 0,
                delegated: 0,
                tombstoned: false,
            });
            v.consensus_key = p.consensus_key;
            v.bonded += p.amount;
            Ok(())
        }
        Payload::Delegate(p) => {
            let org = any_org(state, signer)?;
            if !state.validators.contains_key(&p.validator) {
                return Err(reject(
                    RejectCode::UnknownValidator,
                    format!("{} is not a bonded validator", p.validator),
                ));
            }
            refuse_tombstoned(state, &p.validator)?;
            take_stake(state, &org, p.amount)?;
            state
                .validators
                .get_mut(&p.validator)
                .expect("checked")
                .delegated += p.amount;
            *state
                .delegations
                .entry((org, p.validator.clone()))
                .or_insert(0) += p.amount;
            Ok(())
        }
        Payload::Undelegate(p) => {
            let org = any_org(state, signer)?;
            let key = (org.clone(), p.validator.clone());
            let delegated = state.delegations.get(&key).copied().unwrap_or(0);
            if p.amount == 0 || p.amount > delegated {
                return Err(reject(
                    RejectCode::InsufficientStake,
                    format!(
                        "{org} delegated {delegated} to {}; cannot withdraw {}",
                        p.validator, p.amount
                    ),
                ));
            }
            if delegated == p.amount {
                state.delegations.remove(&key);
            } else {
                state.delegations.insert(key, delegated - p.amount);
            }
            state
                .validators
                .get_mut(&p.validator)
                .expect("a delegation names a validator")
                .delegated -= p.amount;
            *state.stake.entry(org).or_insert(0) += p.amount;
            Ok(())
        }
    }
}

fn empty_rules() -> TokenRules {
    TokenRules {
        required_topics: BoundedVec::default(),
        allowed_countries: BoundedVec::default(),
        denied_countries: BoundedVec::default(),
        max_holders: 0,
        max_balance_per_identity: Units::ZERO,
        lockup_until: None,
    }
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

fn refuse_tombstoned(state: &State, org: &OrgId) -> Result<(), Rejection> {
    if state.validators.get(org).is_some_and(|v| v.tombstoned) {
        return Err(reject(
            RejectCode::Tombstoned,
            format!("{org} was slashed for equivocating"),
        ));
    }
    Ok(())
}

fn take_stake(state: &mut State, org: &OrgId, amount: u128) -> Result<(), Rejection> {
    let free = state.stake.get(org).copied().unwrap_or(0);
    if amount == 0 || amount > free {
        return Err(reject(
            RejectCode::InsufficientStake,
            format!("{org} has {free} free stake; {amount} asked"),
        ));
    }
    if free == amount {
        state.stake.remove(org);
    } else {
        state.stake.insert(org.clone(), free - amount);
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

fn govern(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    action: &GovernanceAction,
) -> Result<(), Rejection> {
    let org = any_org(state, signer)?;
    if !state.orgs[&org].governor {
        return Err(reject(
            RejectCode::NotGovernor,
            format!("{org} does not govern"),
        ));
    }
    // The action must be possible now, or the vote is refused.
    validate_action(state, action)?;
    let digest = Hash::digest(b"tranche/governance/v1", &action.encode());
    let voters = state.votes.entry(digest).or_default();
    if voters.contains(&org) {
        return Err(reject(
            RejectCode::AlreadyVoted,
            format!("{org} voted for this already"),
        ));
    }
    voters.push(org.clone());
    voters.sort();
    let votes = voters.len();
    let governors = state.orgs.values().filter(|o| o.governor).count();
    let needed = quorum(governors);
    tx.events.push(LedgerEvent::GovernanceVote {
        action: digest,
        org,
        votes: votes as u32,
        quorum: needed as u32,
    });
    if votes >= needed {
        state.votes.remove(&digest);
        match action {
            GovernanceAction::Admit(a) => {
                state.org_by_key.insert(a.key, a.org.clone());
                state.orgs.insert(
                    a.org.clone(),
                    Organisation {
                        key: a.key,
                        roles: Roles::default(),
                        governor: a.governor,
                    },
                );
            }
            GovernanceAction::Grant(c) => {
                let o = state.orgs.get_mut(&c.org).expect("validated");
                o.roles = o.roles.with(c.role);
            }
            GovernanceAction::Revoke(c) => {
                let o = state.orgs.get_mut(&c.org).expect("validated");
                o.roles = o.roles.without(c.role);
            }
        }
        tx.events
            .push(LedgerEvent::GovernanceExecuted { action: digest });
    }
    Ok(())
}

fn validate_action(state: &State, action: &GovernanceAction) -> Result<(), Rejection> {
    match action {
        GovernanceAction::Admit(a) => {
            if state.orgs.contains_key(&a.org) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("{} is admitted already", a.org),
                ));
            }
            if let Some(o) = state.org_by_key.get(&a.key) {
                return Err(reject(
                    RejectCode::AlreadyExists,
                    format!("the key belongs to {o} already"),
                ));
            }
            Ok(())
        }
        GovernanceAction::Grant(c) => {
            let o = state.orgs.get(&c.org).ok_or_else(|| unknown_org(&c.org))?;
            if violates_separation(o.roles.with(c.role)) {
                return Err(reject(
                    RejectCode::SeparationOfDuties,
                    format!(
                        "{} would hold {:?} with {:?}: an issuer may not be a TSP or an exchange",
                        c.org,
                        c.role,
                        o.roles.list()
                    ),
                ));
            }
            Ok(())
        }
        GovernanceAction::Revoke(c) => {
            state.orgs.get(&c.org).ok_or_else(|| unknown_org(&c.org))?;
            Ok(())
        }
    }
}

fn unknown_org(org: &OrgId) -> Rejection {
    reject(
        RejectCode::UnknownOrganisation,
        format!("no organisation {org} is admitted"),
    )
}

fn request_issuance(
    state: &mut State,
    signer: &PublicKey,
    p: &RequestIssuance,
) -> Result<(), Rejection> {
    let org = org_with(state, signer, Role::Tsp)?;
    let asset = state
        .assets
        .get(&p.asset)
        .ok_or_else(|| unknown_asset(&p.asset))?;
    if asset.tsp != org {
        return Err(reject(
            RejectCode::NotTheTsp,
            format!("{} is registered with {}, not {org}", p.asset, asset.tsp),
        ));
    }
    if state.issuances.contains_key(&p.request) || state.revocations.contains_key(&p.request) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("request {} exists already", p.request),
        ));
    }
    if state.tokens.contains_key(&p.token)
        || state
            .issuances
            .values()
            .any(|r| r.terms.token == p.token && !r.withdrawn)
    {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("token {} exists or is requested already", p.token),
        ));
    }
    // SR-6: the price must be backed by an appraisal within the TSP's tolerance.
    let appraised = asset.appraisal.as_ref().ok_or_else(|| {
        reject(
            RejectCode::AppraisalMissing,
            format!("{} has no appraisal", p.asset),
        )
    })?;
    let ap = asset.price.minor.0;
    let diff = ap.abs_diff(appraised.minor.0);
    let within = diff
        .checked_mul(10_000)
        .zip(ap.checked_mul(u128::from(asset.tolerance_bps)))
        .map(|(d, t)| d <= t)
        .ok_or_else(overflow)?;
    if !within {
        return Err(reject(
            RejectCode::AppraisalOutOfTolerance,
            format!(
                "appraised at {appraised}, asked {}: more than {} bps apart",
                asset.price, asset.tolerance_bps
            ),
        ));
    }
    if p.unit_price.currency != asset.price.currency {
        return Err(reject(
            RejectCode::CurrencyMismatch,
            "the token price must be in the asset price's currency",
        ));
    }
    let sp = p.unit_price.minor.0;
    if sp == 0 {
        return Err(reject(
            RejectCode::ZeroAmount,
            "the token price must be above zero",
        ));
    }
    // F5-2: AP / SP whole tokens, exactly the amount requested.
    if ap % sp != 0 || Units(ap / sp) != p.amount {
        return Err(reject(
            RejectCode::NotWholeTokens,
            format!(
                "{} / {} is not {} whole tokens",
                asset.price, p.unit_price, p.amount
            ),
        ));
    }
    if p.expiry_date < p.issue_date {
        return Err(reject(
            RejectCode::InvalidField,
            "the expiry date is before the issue date",
        ));
    }
    let issuer = state
        .orgs
        .get(&p.issuer)
        .ok_or_else(|| unknown_org(&p.issuer))?;
    if p.issuer == org {
        return Err(reject(
            RejectCode::SeparationOfDuties,
            "a token's TSP and issuer must be different organisations (SR-1)",
        ));
    }
    if !issuer.roles.has(Role::Issuer) {
        return Err(reject(
            RejectCode::MissingRole,
            format!("{} is not an issuer", p.issuer),
        ));
    }
    unique_wallets(&p.allocations)?;
    if sum(&p.allocations)? != p.amount {
        return Err(reject(
            RejectCode::AllocationMismatch,
            format!(
                "the allocations add up to {}, not {}",
                sum(&p.allocations)?,
                p.amount
            ),
        ));
    }
    if p.rules
        .allowed_countries
        .iter()
        .any(|c| p.rules.denied_countries.contains(c))
    {
        return Err(reject(
            RejectCode::InvalidField,
            "a country is both allowed and denied",
        ));
    }
    state.issuances.insert(
        p.request.clone(),
        IssuanceRequest {
            tsp: org,
            terms: p.clone(),
            issued: None,
            withdrawn: false,
        },
    );
    Ok(())
}

fn withdraw_issuance(
    state: &mut State,
    signer: &PublicKey,
    p: &WithdrawIssuance,
) -> Result<(), Rejection> {
    let org = org_with(state, signer, Role::Tsp)?;
    let r = state.issuances.get_mut(&p.request).ok_or_else(|| {
        reject(
            RejectCode::UnknownRequest,
            format!("no issuance request {}", p.request),
        )
    })?;
    if r.tsp != org {
        return Err(reject(
            RejectCode::NotTheTsp,
            format!("{} filed request {}, not {org}", r.tsp, p.request),
        ));
    }
    if r.issued.is_some() {
        return Err(reject(
            RejectCode::RequestAlreadyExecuted,
            format!(
                "request {} was carried out already; ask for a revocation instead",
                p.request
            ),
        ));
    }
    if r.withdrawn {
        return Err(reject(
            RejectCode::RequestWithdrawn,
            format!("request {} is withdrawn already", p.request),
        ));
    }
    r.withdrawn = true;
    Ok(())
}

fn execute_issuance(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    p: &ExecuteIssuance,
) -> Result<(), Rejection> {
    let org = org_with(state, signer, Role::Issuer)?;
    let r = state.issuances.get(&p.request).ok_or_else(|| {
        reject(
            RejectCode::UnknownRequest,
            format!("no issuance request {}", p.request),
        )
    })?;
    let terms = &r.terms;
    if terms.issuer != org {
        return Err(reject(
            RejectCode::NotTheNamedIssuer,
            format!("request {} names {}, not {org}", p.request, terms.issuer),
        ));
    }
    if r.issued.is_some() {
        return Err(reject(
            RejectCode::RequestAlreadyExecuted,
            format!("request {} was carried out already", p.request),
        ));
    }
    if r.withdrawn {
        return Err(reject(
            RejectCode::RequestWithdrawn,
            format!("{} withdrew request {}", r.tsp, p.request),
        ));
    }
    // ST-1: exactly what was requested, to exactly whom.
    if p.amount != terms.amount || p.allocations != terms.allocations {
        return Err(reject(
            RejectCode::IssuanceMismatch,
            format!(
                "request {} asks {} in {} allocations; {} in {} were offered",
                p.request,
                terms.amount,
                terms.allocations.len(),
                p.amount,
                p.allocations.len()
            ),
        ));
    }
    let token_id = terms.token.clone();
    let t = Token {
        kind: TokenKind::Security,
        issuer: org,
        tsp: Some(r.tsp.clone()),
        asset: Some(terms.asset.clone()),
        request: Some(p.request.clone()),
        unit_price: Some(terms.unit_price.clone()),
        currency: None,
        issue_date: terms.issue_date,
        expiry_date: Some(terms.expiry_date),
        issued: terms.amount,
        revoked: Units::ZERO,
        paused: false,
        rules: terms.rules.clone(),
        holders: 0,
        checkpoints: 0,
    };
    // Every investor must pass the token's rules on what they receive in
    // total: each allocation is checked against the state the allocations
    // before it leave (two wallets of one identity count together). If one is
    // refused, the new token and everything credited go again.
    let allocations = terms.allocations.clone();
    state.tokens.insert(token_id.clone(), t);
    for (n, a) in allocations.iter().enumerate() {
        let t = state.tokens.get(&token_id).expect("inserted above");
        if let Err(r) = check_receiver(state, tx.ctx, &token_id, t, None, &a.wallet, a.amount) {
            for earlier in &allocations[..n] {
                set_balance(state, &token_id, &earlier.wallet, Units::ZERO);
            }
            state.tokens.remove(&token_id);
            return Err(r);
        }
        credit(state, &token_id, &a.wallet, a.amount);
    }
    for a in allocations.iter() {
        tx.record(&token_id, None, a.wallet, a.amount, TransferKind::Issuance);
    }
    state
        .issuances
        .get_mut(&p.request)
        .expect("found above")
        .issued = Some(p.amount);
    Ok(())
}

/// What a custodian co-signs: the holder's instruction, bound to the holder's
/// key and nonce so it cannot be replayed.
pub fn cosign_message(signer: &PublicKey, nonce: u64, p: &CustodialTransfer) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&signer.encode());
    m.extend_from_slice(&nonce.encode());
    m.extend_from_slice(&p.custodian.encode());
    m.extend_from_slice(&p.token.encode());
    m.extend_from_slice(&p.to.encode());
    m.extend_from_slice(&p.amount.encode());
    m.extend_from_slice(&p.reference.encode());
    m
}

fn custodial_transfer(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    p: &CustodialTransfer,
) -> Result<(), Rejection> {
    let custodian = state
        .orgs
        .get(&p.custodian)
        .ok_or_else(|| unknown_org(&p.custodian))?;
    // ST-3: only the holder's own key instructs a move: the key of the
    // holder's DID, or a wallet the holder bound to it (a binding carries the
    // DID's signature, so nobody else can make one).
    let (holder, bound) = match state.wallets.get(&signer.address()) {
        Some(did) => (did.clone(), true),
        None => (did_of_key(signer), false),
    };
    let from = custodial_wallet(&p.custodian, &holder);
    if !state.custody.contains_key(&from) {
        return Err(if bound {
            reject(
                RejectCode::UnknownCustodialWallet,
                format!("{} keeps no wallet for {holder}", p.custodian),
            )
        } else {
            reject(
                RejectCode::HolderAuthorizationMissing,
                format!(
                    "the signer {signer} is neither a wallet bound to an identity nor the key of a DID \
                     {} keeps a wallet for; a custodial wallet moves only on its holder's own signature",
                    p.custodian
                ),
            )
        });
    }
    let message = cosign_message(signer, tx.stx.tx.nonce, p);
    verify(
        &custodian.key,
        Domain::CustodianCosign,
        tx.chain_id,
        &message,
        &p.cosignature,
    )
    .map_err(|_| {
        reject(
            RejectCode::BadCosignature,
            format!(
                "the co-signature is not {}'s over this instruction",
                p.custodian
            ),
        )
    })?;
    check(
        state,
        tx.ctx,
        &p.token,
        &from,
        &p.to,
        p.amount,
        Mode::Holder,
    )?;
    move_units(state, &p.token, &from, &p.to, p.amount);
    let r = tx.record(
        &p.token,
        Some(from),
        p.to,
        p.amount,
        TransferKind::Custodial,
    );
    r.reference = p.reference.clone();
    r.custodian_signature = Some(p.cosignature);
    Ok(())
}

fn declare_distribution(
    state: &mut State,
    signer: &PublicKey,
    p: &DeclareDistribution,
) -> Result<(), Rejection> {
    let org = tsp_of_token(state, signer, &p.token)?;
    if state.distributions.contains_key(&p.distribution) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("distribution {} exists already", p.distribution),
        ));
    }
    let cp = state
        .checkpoints
        .get(&(p.token.clone(), p.checkpoint))
        .ok_or_else(|| {
            reject(
                RejectCode::UnknownCheckpoint,
                format!("{} has no checkpoint {}", p.token, p.checkpoint),
            )
        })?;
    let total = p.total.minor.0;
    if total == 0 {
        return Err(reject(
            RejectCode::ZeroAmount,
            "the total must be above zero",
        ));
    }
    if cp.total.is_zero() {
        return Err(reject(
            RejectCode::InvalidField,
            "nobody held the token at this checkpoint",
        ));
    }
    // Pro rata, rounded down for each holder; what rounding leaves is the
    // remainder, returned to the TSP and recorded.
    let mut shares = Vec::new();
    let mut given: u128 = 0;
    for ((_, _, w), units) in state
        .checkpoint_balances
        .range((p.token.clone(), p.checkpoint, WalletAddress([0; 20]))..)
        .take_while(|((t, n, _), _)| *t == p.token && *n == p.checkpoint)
    {
        let share = total.checked_mul(units.0).ok_or_else(overflow)? / cp.total.0;
        given += share;
        shares.push((*w, share));
    }
    let remainder = total - given;
    for (w, share) in shares {
        if share > 0 {
            state.entitlements.insert(
                (p.distribution.clone(), w),
                Entitlement {
                    amount: Units(share),
                    paid: false,
                },
            );
        }
    }
    state.distributions.insert(
        p.distribution.clone(),
        Distribution {
            tsp: org,
            token: p.token.clone(),
            checkpoint: p.checkpoint,
            total: p.total.clone(),
            remainder: Money::new(remainder, p.total.currency.clone()),
        },
    );
    Ok(())
}

fn execute_revocation(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    p: &ExecuteRevocation,
) -> Result<(), Rejection> {
    let org = org_with(state, signer, Role::Issuer)?;
    let r = state.revocations.get(&p.request).ok_or_else(|| {
        reject(
            RejectCode::UnknownRequest,
            format!("no revocation request {}", p.request),
        )
    })?;
    let t = token(state, &r.token)?;
    if t.issuer != org {
        return Err(reject(
            RejectCode::NotTheNamedIssuer,
            format!("{} issues {}, not {org}", t.issuer, r.token),
        ));
    }
    if r.revoked.is_some() {
        return Err(reject(
            RejectCode::RequestAlreadyExecuted,
            format!("request {} was carried out already", p.request),
        ));
    }
    unique_wallets(&p.moves)?;
    // ST-2: exactly the requested amount.
    let total = sum(&p.moves)?;
    if total != r.amount {
        return Err(reject(
            RejectCode::RevocationMismatch,
            format!(
                "request {} asks {} revoked; the moves add up to {total}",
                p.request, r.amount
            ),
        ));
    }
    let id = r.token.clone();
    let rev = revocation_wallet(&id);
    for m in p.moves.iter() {
        check(
            state,
            tx.ctx,
            &id,
            &m.wallet,
            &rev,
            m.amount,
            Mode::Revocation,
        )?;
    }
    for m in p.moves.iter() {
        move_units(state, &id, &m.wallet, &rev, m.amount);
        // Frozen units that were revoked are no longer frozen.
        let left = balance(state, &id, &m.wallet);
        if let Some(f) = state.freezes.get_mut(&(id.clone(), m.wallet)) {
            f.amount = f.amount.min(left);
        }
        tidy_freeze(state, &id, &m.wallet);
        tx.record(&id, Some(m.wallet), rev, m.amount, TransferKind::Revocation);
    }
    let t = state.tokens.get_mut(&id).expect("checked");
    t.revoked = t.revoked.checked_add(total).expect("bounded by issued");
    state
        .revocations
        .get_mut(&p.request)
        .expect("found")
        .revoked = Some(total);
    Ok(())
}

/// The digest the owners of a settlement's wallets approve.
pub fn settlement_digest(signer: &PublicKey, nonce: u64, legs: &[Leg]) -> Vec<u8> {
    let mut m = signer.encode().to_vec();
    m.extend_from_slice(&nonce.encode());
    for l in legs {
        m.extend_from_slice(&l.encode());
    }
    Hash::digest(b"tranche/settlement/v1", &m).0.to_vec()
}

fn settle(state: &mut State, tx: &mut Tx<'_>, p: &Settle) -> Result<(), Rejection> {
    if p.legs.is_empty() {
        return Err(reject(
            RejectCode::InvalidField,
            "a settlement needs at least one leg",
        ));
    }
    for leg in p.legs.iter() {
        refuse_revocation_wallet(&leg.token, &leg.from)?;
    }
    let signer = tx.stx.tx.signer;
    let digest = settlement_digest(&signer, tx.stx.tx.nonce, &p.legs);
    for leg in p.legs.iter() {
        if leg.from == signer.address() {
            continue;
        }
        let approved = p.approvals.iter().any(|a| {
            a.key.address() == leg.from
                && verify(
                    &a.key,
                    Domain::Transaction,
                    tx.chain_id,
                    &digest,
                    &a.signature,
                )
                .is_ok()
        });
        if !approved {
            return Err(reject(
                RejectCode::MissingApproval,
                format!(
                    "wallet {} gives {} {} without its owner's approval",
                    leg.from, leg.amount, leg.token
                ),
            ));
        }
    }
    // Each leg is checked against the state the legs before it leave, so the
    // settlement meets every rule on its combined effect (free balance,
    // per-identity limit, holder count): applied, it is what the same legs
    // applied one by one in this order would give. A refused leg puts the
    // earlier ones back.
    let mut undo = Undo::default();
    for leg in p.legs.iter() {
        if let Err(r) = check(
            state,
            tx.ctx,
            &leg.token,
            &leg.from,
            &leg.to,
            leg.amount,
            Mode::Holder,
        ) {
            undo.restore(state);
            return Err(r);
        }
        undo.remember(state, &leg.token, &leg.from, &leg.to);
        move_units(state, &leg.token, &leg.from, &leg.to, leg.amount);
    }
    for leg in p.legs.iter() {
        tx.record(
            &leg.token,
            Some(leg.from),
            leg.to,
            leg.amount,
            TransferKind::Settlement,
        );
    }
    Ok(())
}
