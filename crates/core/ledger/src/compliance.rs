//! The transfer rules (L-1, F6-7): identities, claims, jurisdictions, holder
//! and balance limits, lock-up, pre-approval, freezes, pause, revocation and
//! expiry. A transaction stops at the first broken rule; a pre-check runs the
//! same code and gathers every one.

use crate::address::revocation_wallet;
use crate::keys::{Before, Before2, Pair};
use crate::state::{State, Token, TokenKind};
use crate::{reject, BlockContext};
use tranche_types::{
    ClaimTopic, CountryCode, Date, Did, LimitPeriod, RejectCode, Rejection, Role, TokenId, Units,
    WalletAddress,
};

/// Who is moving the tokens, which decides which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The holder (or a settlement on their behalf): every rule.
    Holder,
    /// The token's agent: identity rules for the receiver only.
    Forced,
    /// A lost wallet's tokens to a new wallet of the same identity.
    Recovery,
    /// Into the revocation wallet: only the balance matters.
    Revocation,
}

/// Where the broken rules of a check go: the first one ends a transaction's
/// check; a pre-check notes each and goes on, so it reports every reason
/// through the very code that decides execution.
pub(crate) struct Reasons(Option<Vec<Rejection>>);

impl Reasons {
    /// Stop at the first broken rule.
    pub(crate) fn first() -> Reasons {
        Reasons(None)
    }

    /// Note every broken rule.
    pub(crate) fn every() -> Reasons {
        Reasons(Some(Vec::new()))
    }

    /// A rule is broken: the check ends here, or the reason is noted and the
    /// check goes on.
    fn broken(&mut self, r: Rejection) -> Result<(), Rejection> {
        match &mut self.0 {
            None => Err(r),
            Some(all) => {
                all.push(r);
                Ok(())
            }
        }
    }

    /// A part of the check that ended early (its first reason) counts as one
    /// broken rule of the whole.
    fn also(&mut self, part: Result<(), Rejection>) -> Result<(), Rejection> {
        part.or_else(|r| self.broken(r))
    }

    /// Every reason noted, and the one that ended the check if one did.
    pub(crate) fn finish(self, end: Result<(), Rejection>) -> Vec<Rejection> {
        let mut all = self.0.unwrap_or_default();
        all.extend(end.err());
        all
    }
}

pub(crate) fn token<'a>(state: &'a State, id: &TokenId) -> Result<&'a Token, Rejection> {
    state
        .tokens
        .get(id)
        .ok_or_else(|| reject(RejectCode::UnknownToken, format!("no token {id} exists")))
}

pub(crate) fn balance(state: &State, token: &TokenId, wallet: &WalletAddress) -> Units {
    state
        .balances
        .get(&Pair(token, wallet))
        .copied()
        .unwrap_or(Units::ZERO)
}

pub(crate) fn did_of<'a>(state: &'a State, wallet: &WalletAddress) -> Result<&'a Did, Rejection> {
    state.wallets.get(wallet).ok_or_else(|| {
        reject(
            RejectCode::WalletNotRegistered,
            format!("wallet {wallet} is not bound to an identity"),
        )
    })
}

/// Whether `claim`, of `topic` from `issuer`, counts for token `id`: not
/// revoked, not expired, from an organisation that still holds the
/// claim-issuer role and, if the token names the issuers it trusts for the
/// topic, one of them.
fn counts(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    topic: ClaimTopic,
    issuer: &tranche_types::OrgId,
    claim: &crate::state::Claim,
) -> bool {
    // Most tokens trust every claim issuer: skip the lookup then.
    let untrusted = !state.trusted_issuers.is_empty()
        && state
            .trusted_issuers
            .get(&Pair(id, &topic))
            .is_some_and(|t| !t.contains(issuer));
    !untrusted
        && !claim.revoked
        && claim.expiry_date >= ctx.date()
        && state
            .orgs
            .get(issuer)
            .is_some_and(|o| o.roles.has(Role::ClaimIssuer))
}

/// A valid claim of `topic` about `did` for token `id` (see [`counts`]).
fn valid_claim<'a>(
    state: &'a State,
    ctx: &BlockContext,
    id: &TokenId,
    did: &Did,
    topic: ClaimTopic,
) -> Option<&'a crate::state::Claim> {
    state
        .claims
        .range(Before2(did, &topic)..)
        .take_while(|((d, t, _), _)| d == did && *t == topic)
        .find(|((_, _, issuer), c)| counts(state, ctx, id, topic, issuer, c))
        .map(|(_, c)| c)
}

/// What one pass over `did`'s claims finds for token `id`: which of
/// `topics` have a valid claim (bit `i` for `topics[i]`), and the country
/// of its first valid jurisdiction claim, the one [`valid_claim`] finds.
fn identity_claims(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    did: &Did,
    topics: &[ClaimTopic],
) -> (u32, Option<CountryCode>) {
    let (mut found, mut country) = (0u32, None);
    let mut jurisdiction_seen = false;
    for ((_, topic, issuer), c) in state
        .claims
        .range(Before(did)..)
        .take_while(|((d, _, _), _)| d == did)
    {
        // Every place the topic is listed (a topic may be listed twice;
        // the rules list at most 16).
        let wanted = topics
            .iter()
            .enumerate()
            .filter(|(_, t)| *t == topic)
            .fold(0u32, |bits, (i, _)| bits | 1 << i);
        let for_country = *topic == ClaimTopic::JURISDICTION && !jurisdiction_seen;
        if ((wanted & !found) == 0 && !for_country) || !counts(state, ctx, id, *topic, issuer, c) {
            continue;
        }
        found |= wanted;
        if for_country {
            jurisdiction_seen = true;
            country = c.country;
        }
    }
    (found, country)
}

/// Whether the token's own rules (claims, countries, limits, lock-up,
/// pre-approval) are checked: not for cash, not while its agent suspends them.
fn rules_apply(t: &Token) -> bool {
    t.kind != TokenKind::Cash && !t.rules_suspended
}

/// Checks that `wallet`'s identity may hold `token` under its rules.
fn check_identity(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    t: &Token,
    wallet: &WalletAddress,
    reasons: &mut Reasons,
) -> Result<(), Rejection> {
    let did = did_of(state, wallet)?;
    if !rules_apply(t) {
        return Ok(());
    }
    let topics = &t.rules.required_topics;
    let (found, c) = identity_claims(state, ctx, id, did, topics);
    for (i, topic) in topics.iter().enumerate() {
        if found & (1 << i) == 0 {
            reasons.broken(reject(
                RejectCode::IdentityNotVerified,
                format!(
                    "{did} (wallet {wallet}) has no valid claim of topic {} from a trusted claim issuer",
                    topic.0
                ),
            ))?;
        }
    }
    let allowed = &t.rules.allowed_countries;
    let denied = &t.rules.denied_countries;
    if !allowed.is_empty() || !denied.is_empty() {
        let refused = match c {
            Some(c) => denied.contains(&c) || (!allowed.is_empty() && !allowed.contains(&c)),
            None => !allowed.is_empty(),
        };
        if refused {
            let shown = c.map_or("unknown".to_string(), |c| c.to_string());
            reasons.broken(reject(
                RejectCode::CountryNotAllowed,
                format!("{did} resides in {shown}, which this token's rules do not allow"),
            ))?;
        }
    }
    Ok(())
}

/// Checks that `to` may receive `amount` of `t` given that `from` (if any)
/// gives it: identity, per-identity balance and holder-count limits.
pub(crate) fn check_receiver(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    t: &Token,
    from: Option<&WalletAddress>,
    to: &WalletAddress,
    amount: Units,
) -> Result<(), Rejection> {
    receiver_rules(state, ctx, id, t, from, to, amount, &mut Reasons::first())
}

#[allow(clippy::too_many_arguments)]
fn receiver_rules(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    t: &Token,
    from: Option<&WalletAddress>,
    to: &WalletAddress,
    amount: Units,
    reasons: &mut Reasons,
) -> Result<(), Rejection> {
    let identity = check_identity(state, ctx, id, t, to, reasons);
    reasons.also(identity)?;
    if !rules_apply(t) {
        return Ok(());
    }
    let exempt = |did: &Did| {
        !state.limit_exemptions.is_empty() && state.limit_exemptions.contains_key(&Pair(id, did))
    };
    let max = t.rules.max_balance_per_identity;
    let categories = &t.rules.category_limits;
    // Issuance (no sender) is excepted from the ownership share, by rule.
    let share = t.rules.max_ownership_bps.min(10_000);
    let share = if from.is_some() { share } else { 0 };
    if !max.is_zero() || !categories.is_empty() || share > 0 {
        if let Some(did) = did_of(state, to).ok().filter(|d| !exempt(d)) {
            let mut held = Units::ZERO;
            for ((d, w), ()) in state.did_wallets.range(Before(did)..) {
                if d != did {
                    break;
                }
                if Some(w) != from {
                    held = held
                        .checked_add(balance(state, id, w))
                        .ok_or_else(overflow)?;
                }
            }
            let after = held.checked_add(amount).ok_or_else(overflow)?;
            if !max.is_zero() && after > max {
                reasons.broken(reject(
                    RejectCode::MaxBalanceExceeded,
                    format!(
                        "{did} would hold {after} of {id}; at most {max} are allowed per identity"
                    ),
                ))?;
            }
            // The lowest cap of the categories the identity is in.
            let cap = categories
                .iter()
                .filter(|c| valid_claim(state, ctx, id, did, c.topic).is_some())
                .min_by_key(|c| c.max_per_identity);
            if let Some(c) = cap.filter(|c| after > c.max_per_identity) {
                reasons.broken(reject(
                    RejectCode::CategoryLimitExceeded,
                    format!(
                        "{did} would hold {after} of {id}; investors of category {} hold at most {}",
                        c.topic.0, c.max_per_identity
                    ),
                ))?;
            }
            let most = t.circulating().0.saturating_mul(u128::from(share)) / 10_000;
            if share > 0 && after.0 > most {
                reasons.broken(reject(
                    RejectCode::OwnershipLimitExceeded,
                    format!(
                        "{did} would hold {after} of {id}'s {} circulating; at most {share} basis points ({most}) are allowed",
                        t.circulating()
                    ),
                ))?;
            }
        }
    }
    // The holders counted are identities: a wallet of an identity that
    // already holds adds none, and a sender's identity leaving makes room.
    if t.rules.max_holders > 0 {
        if let Some(did) = did_of(state, to).ok().filter(|d| !exempt(d)) {
            let holds = |d: &Did| {
                state
                    .identity_holdings
                    .get(&Pair(id, d))
                    .copied()
                    .unwrap_or(0)
            };
            if holds(did) == 0 {
                let sender_leaves = from.is_some_and(|f| {
                    balance(state, id, f) == amount
                        && state
                            .wallets
                            .get(f)
                            .is_some_and(|d| d != did && holds(d) == 1)
                });
                if !sender_leaves && t.holder_identities >= t.rules.max_holders {
                    reasons.broken(reject(
                        RejectCode::MaxHoldersReached,
                        format!(
                            "{id} is held by {} identities, its most",
                            t.holder_identities
                        ),
                    ))?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn overflow() -> Rejection {
    reject(RejectCode::Overflow, "the amounts are too large")
}

/// Checks a movement of `amount` of `id` from `from` to `to` under `mode`.
pub(crate) fn check(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    from: &WalletAddress,
    to: &WalletAddress,
    amount: Units,
    mode: Mode,
) -> Result<(), Rejection> {
    check_into(
        state,
        ctx,
        id,
        from,
        to,
        amount,
        mode,
        &mut Reasons::first(),
    )
}

/// The rules of [`check`], each broken one given to `reasons`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_into(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    from: &WalletAddress,
    to: &WalletAddress,
    amount: Units,
    mode: Mode,
    reasons: &mut Reasons,
) -> Result<(), Rejection> {
    let t = token(state, id)?;
    if amount.is_zero() {
        reasons.broken(reject(
            RejectCode::ZeroAmount,
            "the amount must be at least 1",
        ))?;
    }
    let revocation = revocation_wallet(id);
    if *from == revocation {
        reasons.broken(reject(
            RejectCode::RevocationWalletLocked,
            format!("{from} is the revocation wallet of {id}; nothing leaves it"),
        ))?;
    }
    if let Some(offering) = state.escrows.get(from) {
        reasons.broken(reject(
            RejectCode::EscrowLocked,
            format!("{from} holds the money of {offering}; only its rules move it"),
        ))?;
    }
    if t.is_revoked() {
        reasons.broken(reject(
            RejectCode::TokenRevoked,
            format!("{id} is revoked; it never moves again"),
        ))?;
    }
    if mode != Mode::Revocation {
        if let Some(expiry) = t.expiry_date {
            if ctx.date() > expiry {
                reasons.broken(reject(
                    RejectCode::TokenExpired,
                    format!("{id} expired on {expiry}; only revocation may move it"),
                ))?;
            }
        }
        if *to == revocation {
            reasons.broken(reject(
                RejectCode::InvalidField,
                format!(
                    "{to} is the revocation wallet of {id}; only a revocation sends tokens there"
                ),
            ))?;
        }
    }
    let held = balance(state, id, from);
    if held < amount {
        reasons.broken(reject(
            RejectCode::InsufficientBalance,
            format!("wallet {from} holds {held} of {id}; {amount} were to be moved"),
        ))?;
    }
    if mode == Mode::Holder {
        holder_rules(state, ctx, id, t, from, to, amount, reasons)?;
    }
    if mode != Mode::Revocation {
        let receiver = receiver_rules(state, ctx, id, t, Some(from), to, amount, reasons);
        reasons.also(receiver)?;
    }
    Ok(())
}

/// What a holder's own transfer must meet on top of the balance: pause,
/// freezes, lock-up, pre-approval and the sender's identity.
#[allow(clippy::too_many_arguments)]
fn holder_rules(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    t: &Token,
    from: &WalletAddress,
    to: &WalletAddress,
    amount: Units,
    reasons: &mut Reasons,
) -> Result<(), Rejection> {
    if t.paused {
        reasons.broken(reject(
            RejectCode::TokenPaused,
            format!("{id} is paused by its agent"),
        ))?;
    }
    let mut whole = false;
    for w in [from, to] {
        if state.freezes.get(&Pair(id, w)).is_some_and(|f| f.all) {
            whole = true;
            reasons.broken(reject(
                RejectCode::WalletFrozen,
                format!("wallet {w} is frozen for {id}"),
            ))?;
        }
    }
    let held = balance(state, id, from);
    let frozen = state
        .freezes
        .get(&Pair(id, from))
        .map_or(Units::ZERO, |f| f.amount);
    let free = held.checked_sub(frozen).unwrap_or(Units::ZERO);
    if !whole && !frozen.is_zero() && free < amount {
        reasons.broken(reject(
            RejectCode::WalletFrozen,
            format!("wallet {from} has {frozen} of its {held} {id} frozen; only {free} may move"),
        ))?;
    }
    let on_hold = live_holds(state, ctx, id, from);
    let spendable = free.checked_sub(on_hold).unwrap_or(Units::ZERO);
    if !on_hold.is_zero() && free >= amount && spendable < amount {
        reasons.broken(reject(
            RejectCode::FundsHeld,
            format!("wallet {from} has {on_hold} of its {held} {id} held for notaries; only {spendable} may move"),
        ))?;
    }
    if rules_apply(t) && !state.lockups.is_empty() {
        let locked = state
            .lockups
            .get(&Pair(id, from))
            .filter(|l| ctx.date() < l.until);
        if let Some(l) = locked {
            let unlocked = spendable.checked_sub(l.units).unwrap_or(Units::ZERO);
            if spendable >= amount && unlocked < amount {
                reasons.broken(reject(
                    RejectCode::LockedUp,
                    format!(
                        "{} of wallet {from}'s {id} are locked up until {}; only {unlocked} may move",
                        l.units, l.until
                    ),
                ))?;
            }
        }
    }
    if rules_apply(t) {
        if let Some(until) = t.rules.lockup_until {
            if ctx.date() < until {
                reasons.broken(reject(
                    RejectCode::LockedUp,
                    format!("{id} is locked up until {until}"),
                ))?;
            }
        }
        if let Some((l, Ok(did))) = limited(state, id, t, from).map(|l| (l, did_of(state, from))) {
            let sent = sent_in_period(state, id, did, l, ctx.date());
            let after = sent.checked_add(amount).ok_or_else(overflow)?;
            if after > l.max {
                let period = match l.period {
                    LimitPeriod::Rolling => format!("the last {} days", l.days),
                    LimitPeriod::CalendarMonth => "this calendar month".into(),
                };
                reasons.broken(reject(
                    RejectCode::TransferLimitExceeded,
                    format!(
                        "{did} sent {sent} of {id} in {period}; with {amount} more it would pass its limit of {}",
                        l.max
                    ),
                ))?;
            }
        }
        if t.rules.transfer_approval && approvals(state, id, from, to, amount) == 0 {
            reasons.broken(reject(
                RejectCode::TransferNotApproved,
                format!(
                    "{id} needs its agent's approval of each transfer; none is outstanding for {amount} from {from} to {to}"
                ),
            ))?;
        }
    }
    let identity = check_identity(state, ctx, id, t, from, reasons);
    reasons.also(identity)
}

/// Units of `wallet`'s `id` its open holds hold at the block's time: an
/// expired hold holds nothing.
pub(crate) fn live_holds(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    wallet: &WalletAddress,
) -> Units {
    if state.wallet_holds.is_empty() {
        return Units::ZERO;
    }
    let Some(listed) = state.wallet_holds.get(&Pair(id, wallet)) else {
        return Units::ZERO;
    };
    listed
        .iter()
        .filter_map(|h| state.holds.get(h))
        .filter(|h| h.expiry > ctx.time)
        .fold(Units::ZERO, |sum, h| {
            sum.checked_add(h.amount)
                .expect("holds never exceed the balance")
        })
}

/// Whether `t`'s transfer limit applies to what `from` sends: the token's
/// agent (a wallet of its own key) and identities it exempted are not held
/// to it.
pub(crate) fn limited<'a>(
    state: &State,
    id: &TokenId,
    t: &'a Token,
    from: &WalletAddress,
) -> Option<&'a tranche_types::TransferLimit> {
    let l = t.rules.transfer_limit.as_ref().filter(|_| rules_apply(t))?;
    let agent = state.orgs.get(&t.issuer).map(|o| o.key.address());
    if agent == Some(*from) {
        return None;
    }
    let exempt = !state.limit_exemptions.is_empty()
        && state
            .wallets
            .get(from)
            .is_some_and(|did| state.limit_exemptions.contains_key(&Pair(id, did)));
    (!exempt).then_some(l)
}

/// The day a transfer limit's period starts on, for a transfer made today.
pub(crate) fn period_start(l: &tranche_types::TransferLimit, today: Date) -> u32 {
    let day = match l.period {
        LimitPeriod::Rolling => today.0 - i32::from(l.days.max(1)) + 1,
        LimitPeriod::CalendarMonth => {
            let (y, m, _) = today.ymd();
            Date::from_ymd(y, m, 1).map_or(today.0, |d| d.0)
        }
    };
    u32::try_from(day).unwrap_or(0)
}

/// What `did` sent of `id` in the limit's period up to today.
fn sent_in_period(
    state: &State,
    id: &TokenId,
    did: &Did,
    l: &tranche_types::TransferLimit,
    today: Date,
) -> Units {
    let (from, to) = (period_start(l, today), day_number(today));
    state
        .sent_by_day
        .range((id.clone(), did.clone(), from)..=(id.clone(), did.clone(), to))
        .fold(Units::ZERO, |sum, (_, u)| {
            sum.checked_add(*u).expect("what was sent fits the supply")
        })
}

/// A day as the key of `sent_by_day` (block times are after 1970).
pub(crate) fn day_number(d: Date) -> u32 {
    u32::try_from(d.0).unwrap_or(0)
}

/// The agent's outstanding approvals of exactly this transfer.
pub(crate) fn approvals(
    state: &State,
    id: &TokenId,
    from: &WalletAddress,
    to: &WalletAddress,
    amount: Units,
) -> u32 {
    if state.transfer_approvals.is_empty() {
        return 0;
    }
    state
        .transfer_approvals
        .get(&(id.clone(), *from, *to, amount))
        .copied()
        .unwrap_or(0)
}

/// Which side of a trade a holder check is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderSide {
    /// The wallet would give the token.
    Send,
    /// The wallet would receive the token.
    Receive,
}

/// Checks the rules of `id` that concern `wallet` alone, as a giver or a
/// receiver of `amount`, whoever the other side turns out to be: what an
/// exchange checks before an order enters its book (F6-7), when the
/// counterparty is not yet known. The balance itself is not checked.
pub(crate) fn check_holder(
    state: &State,
    ctx: &BlockContext,
    id: &TokenId,
    wallet: &WalletAddress,
    side: HolderSide,
    amount: Units,
) -> Result<(), Rejection> {
    let t = token(state, id)?;
    if amount.is_zero() {
        return Err(reject(
            RejectCode::ZeroAmount,
            "the amount must be at least 1",
        ));
    }
    if t.is_revoked() {
        return Err(reject(
            RejectCode::TokenRevoked,
            format!("{id} is revoked; it never moves again"),
        ));
    }
    if let Some(expiry) = t.expiry_date {
        if ctx.date() > expiry {
            return Err(reject(
                RejectCode::TokenExpired,
                format!("{id} expired on {expiry}; only revocation may move it"),
            ));
        }
    }
    if t.paused {
        return Err(reject(
            RejectCode::TokenPaused,
            format!("{id} is paused by its agent"),
        ));
    }
    if state.freezes.get(&Pair(id, wallet)).is_some_and(|f| f.all) {
        return Err(reject(
            RejectCode::WalletFrozen,
            format!("wallet {wallet} is frozen for {id}"),
        ));
    }
    match side {
        HolderSide::Send => {
            if let Some(until) = t.rules.lockup_until.filter(|_| rules_apply(t)) {
                if ctx.date() < until {
                    return Err(reject(
                        RejectCode::LockedUp,
                        format!("{id} is locked up until {until}"),
                    ));
                }
            }
            check_identity(state, ctx, id, t, wallet, &mut Reasons::first())
        }
        HolderSide::Receive => check_receiver(state, ctx, id, t, None, wallet, amount),
    }
}
