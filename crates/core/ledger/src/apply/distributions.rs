//! Profit distributions (F5-9): checkpoints, pro-rata entitlements, and
//! their payment: funded on chain into a pool no key controls, claimed by
//! holders or pushed by the TSP, the unclaimed reclaimed after a deadline
//! (or recorded as paid off chain, for a distribution never funded).

use super::*;
use crate::state::DistributionFunds;

pub(super) fn create_checkpoint(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &CreateCheckpoint,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    tsp_of_token(state, signer, &p.token)?;
    take_checkpoint(state, &p.token, tx.ctx.height);
    Ok(())
}

/// Records every balance of `token` outside its revocation wallet as a new
/// checkpoint at `height`; returns its number.
pub(super) fn take_checkpoint(state: &mut State, token: &TokenId, height: u64) -> u64 {
    let rev = revocation_wallet(token);
    let t = state.tokens.get_mut(token).expect("the token was checked");
    t.checkpoints += 1;
    let number = t.checkpoints;
    let held: Vec<(WalletAddress, Units)> = state
        .balances
        .range((token.clone(), WalletAddress([0; 20]))..)
        .take_while(|((tk, _), _)| tk == token)
        .filter(|((_, w), _)| *w != rev)
        .map(|((_, w), u)| (*w, *u))
        .collect();
    let mut total = Units::ZERO;
    for (w, u) in held {
        total = total.checked_add(u).expect("supply fits");
        state
            .checkpoint_balances
            .insert((token.clone(), number, w), u);
    }
    state
        .checkpoints
        .insert((token.clone(), number), Checkpoint { height, total });
    number
}

pub(super) fn record_payment(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RecordPayment,
) -> Result<(), Rejection> {
    declared_by_signer(state, &tx.stx.tx.signer, &p.distribution)?;
    pay(state, tx, &p.distribution, p.wallet)
}

pub(super) fn declare_distribution(
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

/// The pool wallet of a funded distribution. No key controls it.
fn pool(distribution: &RequestId) -> WalletAddress {
    crate::address::distribution_pool(distribution)
}

fn distribution_of<'a>(state: &'a State, id: &RequestId) -> Result<&'a Distribution, Rejection> {
    state.distributions.get(id).ok_or_else(|| {
        reject(
            RejectCode::UnknownDistribution,
            format!("no distribution {id}"),
        )
    })
}

/// The distribution `id`, if the signer's organisation (a TSP) declared it.
fn declared_by_signer<'a>(
    state: &'a State,
    signer: &PublicKey,
    id: &RequestId,
) -> Result<&'a Distribution, Rejection> {
    let d = distribution_of(state, id)?;
    let org = org_with(state, signer, Role::Tsp)?;
    if d.tsp != org {
        return Err(reject(
            RejectCode::NotTheTsp,
            format!("{} declared it, not {org}", d.tsp),
        ));
    }
    Ok(d)
}

/// The TSP puts a declared distribution's money on chain (F5-9): the sum
/// of the entitlements, in a cash token of the distribution's currency,
/// from its wallet into the distribution's pool, claimable until `deadline`.
pub(super) fn fund_distribution(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &FundDistribution,
) -> Result<(), Rejection> {
    let d = declared_by_signer(state, &tx.stx.tx.signer, &p.distribution)?;
    if state.distribution_funds.contains_key(&p.distribution) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("{} is funded already", p.distribution),
        ));
    }
    if p.deadline <= tx.ctx.time {
        return Err(reject(
            RejectCode::InvalidField,
            "the claim deadline must be in the future",
        ));
    }
    let cash = token(state, &p.cash_token)?;
    if cash.kind != TokenKind::Cash || cash.currency.as_ref() != Some(&d.total.currency) {
        return Err(reject(
            RejectCode::CurrencyMismatch,
            format!(
                "{} is not a cash token in {}",
                p.cash_token,
                d.total.currency.code()
            ),
        ));
    }
    let owed = Units(d.total.minor.0 - d.remainder.minor.0);
    let from = tx.signer_wallet();
    let to = pool(&p.distribution);
    check_cash_out(state, tx.ctx, &p.cash_token, &from, owed)?;
    // Entitlements recorded as paid off chain before funding are not owed.
    let paid_already: u128 = state
        .entitlements
        .range((p.distribution.clone(), WalletAddress([0; 20]))..)
        .take_while(|((d, _), _)| *d == p.distribution)
        .filter(|(_, e)| e.paid)
        .map(|(_, e)| e.amount.0)
        .sum();
    let owed = Units(owed.0 - paid_already);
    if !owed.is_zero() {
        move_units(state, tx.ctx, &p.cash_token, &from, &to, owed);
        tx.record(&p.cash_token, Some(from), to, owed, TransferKind::Escrow);
    }
    state.escrows.insert(to, p.distribution.clone());
    state.distribution_funds.insert(
        p.distribution.clone(),
        DistributionFunds {
            cash_token: p.cash_token.clone(),
            deadline: p.deadline,
            reclaimed: false,
        },
    );
    Ok(())
}

/// Pays `wallet`'s entitlement out of a funded distribution's pool, or,
/// unfunded, records it paid off chain.
fn pay(
    state: &mut State,
    tx: &mut Tx<'_>,
    id: &RequestId,
    wallet: WalletAddress,
) -> Result<(), Rejection> {
    let e = state
        .entitlements
        .get(&(id.clone(), wallet))
        .ok_or_else(|| {
            reject(
                RejectCode::NoEntitlement,
                format!("{wallet} is entitled to nothing in {id}"),
            )
        })?;
    if e.paid {
        return Err(reject(
            RejectCode::AlreadyPaid,
            format!("{wallet} was paid already"),
        ));
    }
    let amount = e.amount;
    if let Some(f) = state.distribution_funds.get(id).cloned() {
        if f.reclaimed || tx.ctx.time >= f.deadline {
            return Err(reject(
                RejectCode::ClaimPeriodOver,
                format!("claims on {id} ended at {}", f.deadline.0),
            ));
        }
        let from = pool(id);
        move_units(state, tx.ctx, &f.cash_token, &from, &wallet, amount);
        tx.record(
            &f.cash_token,
            Some(from),
            wallet,
            amount,
            TransferKind::Escrow,
        );
    }
    state
        .entitlements
        .get_mut(&(id.clone(), wallet))
        .expect("found above")
        .paid = true;
    Ok(())
}

/// A holder claims its entitlement from the signing wallet (F5-9).
pub(super) fn claim_distribution(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ClaimDistribution,
) -> Result<(), Rejection> {
    distribution_of(state, &p.distribution)?;
    if !state.distribution_funds.contains_key(&p.distribution) {
        return Err(reject(
            RejectCode::NotFunded,
            format!(
                "{} has no money on chain to claim; its TSP pays it",
                p.distribution
            ),
        ));
    }
    let wallet = match p.custodial_wallet {
        None => tx.signer_wallet(),
        Some(w) => {
            // A custodial wallet has no key: its custodian claims for it.
            let custodian = org_with(state, &tx.stx.tx.signer, Role::Custodian)?;
            if state.custody.get(&w).map(|c| &c.custodian) != Some(&custodian) {
                return Err(reject(
                    RejectCode::UnknownCustodialWallet,
                    format!("{custodian} keeps no custodial wallet {w}"),
                ));
            }
            w
        }
    };
    pay(state, tx, &p.distribution, wallet)
}

/// After the deadline, the TSP takes back what was not claimed.
pub(super) fn reclaim_distribution(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ReclaimDistribution,
) -> Result<(), Rejection> {
    declared_by_signer(state, &tx.stx.tx.signer, &p.distribution)?;
    let f = state
        .distribution_funds
        .get(&p.distribution)
        .cloned()
        .ok_or_else(|| {
            reject(
                RejectCode::NotFunded,
                format!("{} was never funded on chain", p.distribution),
            )
        })?;
    if f.reclaimed {
        return Err(reject(
            RejectCode::ClaimPeriodOver,
            format!("{} was reclaimed already", p.distribution),
        ));
    }
    if tx.ctx.time < f.deadline {
        return Err(reject(
            RejectCode::ClaimPeriodOpen,
            format!(
                "holders may claim {} until {}",
                p.distribution, f.deadline.0
            ),
        ));
    }
    let from = pool(&p.distribution);
    let left = balance(state, &f.cash_token, &from);
    let to = tx.signer_wallet();
    if !left.is_zero() {
        move_units(state, tx.ctx, &f.cash_token, &from, &to, left);
        tx.record(&f.cash_token, Some(from), to, left, TransferKind::Escrow);
    }
    state
        .distribution_funds
        .get_mut(&p.distribution)
        .expect("found above")
        .reclaimed = true;
    Ok(())
}
