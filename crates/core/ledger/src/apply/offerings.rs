//! Offerings (F5-3, F5-4, F5-6, F5-8, REC-8): a TSP offers an appraised
//! asset's tokens; investors subscribe with an escrow bank's deposit token,
//! which waits in the offering's escrow wallet; at the window's end the
//! offering closes — everyone refunded below the soft cap, else the
//! allocations fixed from the subscriptions — the named issuer issues
//! exactly those allocations, and only then does the bank release the
//! proceeds to the asset owner's wallet. No key controls the escrow: its
//! money moves only by these rules, never at the TSP's (or the bank's) word.
//!
//! Closing and issuing walk the subscriptions in order, at most `max` per
//! transaction, so an offering of any number of investors is carried in as
//! many transactions as it needs, each with the same guarantees.
//!
//! Oversubscription (the integer rule): with `S` units subscribed for `A`
//! offered, a subscription of `s` units is allocated `floor(s × A / S)`;
//! the units the rounding leaves over are not issued, and each investor is
//! refunded `(s − allocated) × SP`.

use super::*;
use crate::address::escrow_wallet;
use crate::state::{Offering, OfferingPhase, Subscription};

fn offering_of<'a>(state: &'a State, id: &RequestId) -> Result<&'a Offering, Rejection> {
    state
        .offerings
        .get(id)
        .ok_or_else(|| reject(RejectCode::UnknownRequest, format!("no offering {id}")))
}

fn batch(max: u32) -> Result<u64, Rejection> {
    if max == 0 || max > OFFERING_BATCH_MAX {
        return Err(reject(
            RejectCode::InvalidField,
            format!("max is 1 to {OFFERING_BATCH_MAX} subscriptions per transaction"),
        ));
    }
    Ok(u64::from(max))
}

/// The cash that `units` tokens at `price` cost.
fn cost(units: Units, price: &Money) -> Result<Units, Rejection> {
    units
        .0
        .checked_mul(price.minor.0)
        .map(Units)
        .ok_or_else(overflow)
}

pub(super) fn open_offering(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &OpenOffering,
) -> Result<(), Rejection> {
    let org = org_with(state, &tx.stx.tx.signer, Role::Tsp)?;
    // The same checks as a request: an appraised asset of this TSP, a price
    // within tolerance, AP / SP whole tokens, an issuer other than the TSP.
    let as_request = RequestIssuance {
        request: p.offering.clone(),
        asset: p.asset.clone(),
        token: p.token.clone(),
        unit_price: p.unit_price.clone(),
        issue_date: p.issue_date,
        expiry_date: p.expiry_date,
        amount: p.amount,
        issuer: p.issuer.clone(),
        // The lock-up on the whole amount: checked as an allocation's.
        allocations: BoundedVec(vec![Allocation {
            wallet: escrow_wallet(&p.offering),
            amount: p.amount,
            lockup_until: p.lockup_until,
        }]),
        rules: p.rules.clone(),
    };
    super::issuance::check_request(state, &org, &as_request)?;
    if p.min_units.is_zero() || p.soft_cap.is_zero() {
        return Err(reject(
            RejectCode::ZeroAmount,
            "the minimum subscription and the soft cap are at least one unit",
        ));
    }
    if (!p.max_units.is_zero() && p.max_units < p.min_units) || p.soft_cap > p.amount {
        return Err(reject(
            RejectCode::InvalidField,
            "the maximum subscription is at least the minimum, and the soft cap at most the amount offered",
        ));
    }
    if p.closes <= p.opens || p.closes <= tx.ctx.time {
        return Err(reject(
            RejectCode::InvalidField,
            "the window must close after it opens, and in the future",
        ));
    }
    let bank = state
        .orgs
        .get(&p.bank)
        .ok_or_else(|| unknown_org(&p.bank))?;
    if !bank.roles.has(Role::EscrowBank) {
        return Err(reject(
            RejectCode::MissingRole,
            format!("{} is not an escrow bank", p.bank),
        ));
    }
    let cash = token(state, &p.cash_token)?;
    if cash.kind != TokenKind::Cash || cash.issuer != p.bank {
        return Err(reject(
            RejectCode::InvalidField,
            format!("{} is not a deposit token of {}", p.cash_token, p.bank),
        ));
    }
    if cash.currency.as_ref() != Some(&p.unit_price.currency) {
        return Err(reject(
            RejectCode::CurrencyMismatch,
            "the deposit token must be in the token price's currency",
        ));
    }
    cost(p.amount, &p.unit_price)?;
    state
        .escrows
        .insert(escrow_wallet(&p.offering), p.offering.clone());
    state.offerings.insert(
        p.offering.clone(),
        Offering {
            tsp: org,
            terms: p.clone(),
            phase: OfferingPhase::Open,
            subscribed: Units::ZERO,
            subscriptions: 0,
            processed: 0,
            allocated: Units::ZERO,
            issued: 0,
        },
    );
    Ok(())
}

/// The token an offering will issue, as its rules will stand: what a
/// subscriber's compliance is checked against.
fn provisional_token(o: &Offering) -> Token {
    Token {
        kind: TokenKind::Security,
        issuer: o.terms.issuer.clone(),
        tsp: Some(o.tsp.clone()),
        asset: Some(o.terms.asset.clone()),
        request: Some(o.terms.offering.clone()),
        unit_price: Some(o.terms.unit_price.clone()),
        currency: None,
        issue_date: o.terms.issue_date,
        expiry_date: Some(o.terms.expiry_date),
        issued: Units::ZERO,
        revoked: Units::ZERO,
        paused: false,
        rules: o.terms.rules.clone(),
        holders: 0,
        checkpoints: 0,
        rules_version: 0,
        rules_since: 0,
        rules_suspended: false,
        document_changes: 0,
        holder_identities: 0,
    }
}

pub(super) fn subscribe(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &Subscribe,
) -> Result<(), Rejection> {
    let wallet = tx.signer_wallet();
    let o = offering_of(state, &p.offering)?;
    let now = tx.ctx.time;
    if o.phase != OfferingPhase::Open || now < o.terms.opens || now >= o.terms.closes {
        return Err(reject(
            RejectCode::OfferingClosed,
            format!(
                "offering {} takes subscriptions from {} until {}",
                p.offering, o.terms.opens.0, o.terms.closes.0
            ),
        ));
    }
    let did = did_of(state, &wallet)?.clone();
    // F5-6, SR-5: the investor must pass the token's rules as they will stand.
    let provisional = provisional_token(o);
    check_receiver(
        state,
        tx.ctx,
        &o.terms.token,
        &provisional,
        None,
        &wallet,
        p.units,
    )?;
    let before = state
        .investor_units
        .get(&(p.offering.clone(), did.clone()))
        .copied()
        .unwrap_or(Units::ZERO);
    let total = before.checked_add(p.units).ok_or_else(overflow)?;
    if p.units.is_zero()
        || total < o.terms.min_units
        || (!o.terms.max_units.is_zero() && total > o.terms.max_units)
    {
        return Err(reject(
            RejectCode::SubscriptionOutOfBounds,
            format!(
                "{did} would subscribe {total} units; each investor subscribes {} to {}",
                o.terms.min_units,
                if o.terms.max_units.is_zero() {
                    "any number".to_string()
                } else {
                    o.terms.max_units.to_string()
                }
            ),
        ));
    }
    let pay = cost(p.units, &o.terms.unit_price)?;
    let cash = o.terms.cash_token.clone();
    check_cash_out(state, tx.ctx, &cash, &wallet, pay)?;
    let subscribed = o.subscribed.checked_add(p.units).ok_or_else(overflow)?;
    let seq = o.subscriptions;
    let escrow = escrow_wallet(&p.offering);
    move_units(state, tx.ctx, &cash, &wallet, &escrow, pay);
    tx.record(&cash, Some(wallet), escrow, pay, TransferKind::Escrow);
    state
        .investor_units
        .insert((p.offering.clone(), did.clone()), total);
    state.subscriptions.insert(
        (p.offering.clone(), seq),
        Subscription {
            wallet,
            did,
            units: p.units,
            allocated: Units::ZERO,
        },
    );
    let o = state.offerings.get_mut(&p.offering).expect("found above");
    o.subscribed = subscribed;
    o.subscriptions = seq + 1;
    Ok(())
}

pub(super) fn close_offering(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &CloseOffering,
) -> Result<(), Rejection> {
    let max = batch(p.max)?;
    let o = offering_of(state, &p.offering)?.clone();
    if tx.ctx.time < o.terms.closes {
        return Err(reject(
            RejectCode::OfferingNotDone,
            format!(
                "offering {} closes at {}; it is {}",
                p.offering, o.terms.closes.0, tx.ctx.time.0
            ),
        ));
    }
    let phase = match o.phase {
        OfferingPhase::Open if o.subscribed < o.terms.soft_cap => OfferingPhase::Refunding,
        OfferingPhase::Open => OfferingPhase::Allocating,
        going @ (OfferingPhase::Refunding | OfferingPhase::Allocating) => going,
        _ => {
            return Err(reject(
                RejectCode::AlreadyExists,
                format!("offering {} is closed already", p.offering),
            ))
        }
    };
    let escrow = escrow_wallet(&p.offering);
    let cash = o.terms.cash_token.clone();
    let price = o.terms.unit_price.clone();
    let end = o.subscriptions.min(o.processed + max);
    let mut allocated = o.allocated;
    for seq in o.processed..end {
        let key = (p.offering.clone(), seq);
        let s = state
            .subscriptions
            .get(&key)
            .expect("subscriptions are numbered densely")
            .clone();
        let units = if phase == OfferingPhase::Refunding {
            Units::ZERO
        } else if o.subscribed <= o.terms.amount {
            s.units
        } else {
            // floor(s × A / S), in 256 bits' worth of care: s ≤ S, so the
            // product fits whenever A × S does, which `cost` bounded.
            Units(
                s.units
                    .0
                    .checked_mul(o.terms.amount.0)
                    .ok_or_else(overflow)?
                    / o.subscribed.0,
            )
        };
        let refund = cost(Units(s.units.0 - units.0), &price)?;
        if !refund.is_zero() {
            move_units(state, tx.ctx, &cash, &escrow, &s.wallet, refund);
            tx.record(&cash, Some(escrow), s.wallet, refund, TransferKind::Escrow);
        }
        allocated = allocated.checked_add(units).ok_or_else(overflow)?;
        state.subscriptions.insert(
            key,
            Subscription {
                allocated: units,
                ..s
            },
        );
    }
    let done = end == o.subscriptions;
    let o = state.offerings.get_mut(&p.offering).expect("found above");
    o.processed = end;
    o.allocated = allocated;
    o.phase = match (phase, done) {
        (OfferingPhase::Refunding, true) => OfferingPhase::Refunded,
        (OfferingPhase::Allocating, true) if allocated.is_zero() => OfferingPhase::Refunded,
        (OfferingPhase::Allocating, true) => OfferingPhase::Allocated,
        (going, _) => going,
    };
    Ok(())
}

pub(super) fn issue_offering(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &IssueOffering,
) -> Result<(), Rejection> {
    let max = batch(p.max)?;
    let org = org_with(state, &tx.stx.tx.signer, Role::Issuer)?;
    let o = offering_of(state, &p.offering)?.clone();
    if o.terms.issuer != org {
        return Err(reject(
            RejectCode::NotTheNamedIssuer,
            format!(
                "offering {} names {}, not {org}",
                p.offering, o.terms.issuer
            ),
        ));
    }
    match o.phase {
        OfferingPhase::Allocated => {}
        OfferingPhase::Issued | OfferingPhase::Released => {
            return Err(reject(
                RejectCode::RequestAlreadyExecuted,
                format!("offering {} is issued already", p.offering),
            ))
        }
        _ => {
            return Err(reject(
                RejectCode::OfferingNotDone,
                format!(
                    "offering {} is not closed with its allocations fixed; close it first",
                    p.offering
                ),
            ))
        }
    }
    let id = o.terms.token.clone();
    if o.issued == 0 {
        let mut t = provisional_token(&o);
        t.issuer = org;
        t.rules_since = tx.ctx.height;
        state.tokens.insert(id.clone(), t);
    }
    // F5-6, ST-1: exactly the allocations the close fixed, in order; the
    // investors' compliance was checked when they paid.
    let end = o.subscriptions.min(o.issued + max);
    for seq in o.issued..end {
        let s = state
            .subscriptions
            .get(&(p.offering.clone(), seq))
            .expect("numbered densely")
            .clone();
        if !s.allocated.is_zero() {
            // What is issued grows with what is credited, so the supply
            // adds up after every batch.
            let t = state
                .tokens
                .get_mut(&id)
                .expect("created by the first batch");
            t.issued = t.issued.checked_add(s.allocated).ok_or_else(overflow)?;
            credit(state, &id, &s.wallet, s.allocated);
            tx.record(&id, None, s.wallet, s.allocated, TransferKind::Issuance);
            // The offering's lock-up (F5-6 terms): these units wait.
            if let Some(until) = o.terms.lockup_until.filter(|d| *d > tx.ctx.date()) {
                super::issuance::lock_up(state, &id, s.wallet, until, s.allocated)?;
            }
        }
    }
    let o = state.offerings.get_mut(&p.offering).expect("found above");
    o.issued = end;
    if end == o.subscriptions {
        o.phase = OfferingPhase::Issued;
    }
    Ok(())
}

pub(super) fn release_proceeds(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ReleaseProceeds,
) -> Result<(), Rejection> {
    let org = org_with(state, &tx.stx.tx.signer, Role::EscrowBank)?;
    let o = offering_of(state, &p.offering)?.clone();
    if o.terms.bank != org {
        return Err(reject(
            RejectCode::NotTokenAgent,
            format!(
                "offering {} escrows with {}, not {org}",
                p.offering, o.terms.bank
            ),
        ));
    }
    match o.phase {
        OfferingPhase::Issued => {}
        OfferingPhase::Released => {
            return Err(reject(
                RejectCode::AlreadyPaid,
                format!("the proceeds of {} were released already", p.offering),
            ))
        }
        _ => {
            return Err(reject(
                RejectCode::NotYetIssued,
                format!(
                    "offering {} is not issued in full: its proceeds stay in escrow (SR-1)",
                    p.offering
                ),
            ))
        }
    }
    // F5-8: to a wallet of the asset's owner.
    let owner = state
        .assets
        .get(&o.terms.asset)
        .map(|a| a.owner.clone())
        .ok_or_else(|| unknown_asset(&o.terms.asset))?;
    if did_of(state, &p.to)? != &owner {
        return Err(reject(
            RejectCode::DifferentIdentity,
            format!("{} is not a wallet of the asset's owner {owner}", p.to),
        ));
    }
    let escrow = escrow_wallet(&p.offering);
    let proceeds = cost(o.allocated, &o.terms.unit_price)?;
    let cash = o.terms.cash_token.clone();
    assert_eq!(
        balance(state, &cash, &escrow),
        proceeds,
        "an issued offering's escrow holds exactly its proceeds"
    );
    if !proceeds.is_zero() {
        move_units(state, tx.ctx, &cash, &escrow, &p.to, proceeds);
        tx.record(&cash, Some(escrow), p.to, proceeds, TransferKind::Escrow);
    }
    state
        .offerings
        .get_mut(&p.offering)
        .expect("found above")
        .phase = OfferingPhase::Released;
    Ok(())
}
