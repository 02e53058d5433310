//! Holds: the holder sets part of its balance aside for a notary until an
//! expiry. The notary executes it (the units go to the receiver, the
//! token's rules checked as for the holder's own transfer) or releases it;
//! from its expiry it no longer holds anything, and anyone may release it.
//! Held units cannot be spent otherwise; the agent's own moves take them
//! last and release the holds they break, newest first.

use super::*;
use crate::compliance::{live_holds, Reasons};
use crate::state::{Hold, HoldState};

fn hold_of(state: &State, id: &RequestId) -> Result<Hold, Rejection> {
    state
        .holds
        .get(id)
        .cloned()
        .ok_or_else(|| reject(RejectCode::UnknownHold, format!("no hold {id} exists")))
}

fn open(h: &Hold, id: &RequestId) -> Result<(), Rejection> {
    if h.state != HoldState::Open {
        return Err(reject(
            RejectCode::HoldClosed,
            format!("hold {id} is {:?} already", h.state),
        ));
    }
    Ok(())
}

/// Takes `id` off its wallet's list of open holds.
fn unlist(state: &mut State, h: &Hold, id: &RequestId) {
    let key = (h.token.clone(), h.wallet);
    let left: Vec<RequestId> = state
        .wallet_holds
        .get(&key)
        .map(|l| l.iter().filter(|x| *x != id).cloned().collect())
        .unwrap_or_default();
    if left.is_empty() {
        state.wallet_holds.remove(&key);
    } else {
        state.wallet_holds.insert(key, BoundedVec(left));
    }
}

fn close(state: &mut State, h: &Hold, id: &RequestId, to: HoldState) {
    unlist(state, h, id);
    state.holds.get_mut(id).expect("the hold exists").state = to;
}

pub(super) fn create_hold(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &CreateHold,
) -> Result<(), Rejection> {
    let wallet = tx.signer_wallet();
    let now = tx.ctx.time;
    token(state, &p.token)?;
    did_of(state, &wallet)?;
    if state.holds.contains_key(&p.hold) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("hold {} exists already", p.hold),
        ));
    }
    if p.amount.is_zero() {
        return Err(reject(RejectCode::ZeroAmount, "hold at least one unit"));
    }
    if p.expiry <= now {
        return Err(reject(
            RejectCode::InvalidField,
            format!("a hold expires after this block's time {now}"),
        ));
    }
    if p.notary == wallet || p.receiver == Some(wallet) {
        return Err(reject(
            RejectCode::InvalidField,
            "the notary and the receiver are wallets other than the holder's",
        ));
    }
    // Expired holds on the wallet are released now: they hold nothing.
    let key = (p.token.clone(), wallet);
    let listed: Vec<RequestId> = state
        .wallet_holds
        .get(&key)
        .map(|l| l.0.clone())
        .unwrap_or_default();
    let expired: Vec<RequestId> = listed
        .iter()
        .filter(|id| state.holds.get(*id).is_some_and(|h| h.expiry <= now))
        .cloned()
        .collect();
    if listed.len() - expired.len() >= WALLET_HOLDS_MAX {
        return Err(reject(
            RejectCode::InvalidField,
            format!(
                "wallet {wallet} has {WALLET_HOLDS_MAX} open holds of {}, the most",
                p.token
            ),
        ));
    }
    let held = balance(state, &p.token, &wallet);
    let frozen = state
        .freezes
        .get(&key)
        .map_or(Units::ZERO, |f| if f.all { held } else { f.amount });
    let on_hold = live_holds(state, tx.ctx, &p.token, &wallet);
    let free = held
        .checked_sub(frozen)
        .and_then(|u| u.checked_sub(on_hold))
        .unwrap_or(Units::ZERO);
    if free < p.amount {
        return Err(reject(
            RejectCode::FundsHeld,
            format!(
                "wallet {wallet} holds {held} of {}: {frozen} frozen, {on_hold} on hold, {free} free; {} were to be held",
                p.token, p.amount
            ),
        ));
    }
    for id in &expired {
        let h = hold_of(state, id)?;
        close(state, &h, id, HoldState::Released);
    }
    let mut listed = state
        .wallet_holds
        .get(&key)
        .map(|l| l.0.clone())
        .unwrap_or_default();
    listed.push(p.hold.clone());
    state.wallet_holds.insert(key, BoundedVec(listed));
    state.holds.insert(
        p.hold.clone(),
        Hold {
            token: p.token.clone(),
            wallet,
            amount: p.amount,
            notary: p.notary,
            receiver: p.receiver,
            expiry: p.expiry,
            state: HoldState::Open,
            height: tx.ctx.height,
        },
    );
    Ok(())
}

pub(super) fn execute_hold(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ExecuteHold,
) -> Result<(), Rejection> {
    let h = hold_of(state, &p.hold)?;
    open(&h, &p.hold)?;
    if tx.signer_wallet() != h.notary {
        return Err(reject(
            RejectCode::NotTheNotary,
            format!("only hold {}'s notary {} executes it", p.hold, h.notary),
        ));
    }
    if tx.ctx.time >= h.expiry {
        return Err(reject(
            RejectCode::HoldExpired,
            format!(
                "hold {} expired at {}; it holds nothing now",
                p.hold, h.expiry
            ),
        ));
    }
    let to = match (h.receiver, p.to) {
        (Some(r), None) => r,
        (Some(r), Some(t)) if r == t => r,
        (None, Some(t)) => t,
        (Some(r), Some(_)) => {
            return Err(reject(
                RejectCode::InvalidField,
                format!("hold {} goes to {r}, which it named", p.hold),
            ))
        }
        (None, None) => {
            return Err(reject(
                RejectCode::InvalidField,
                format!("hold {} names no receiver: name one", p.hold),
            ))
        }
    };
    // Its own units are free for it: checked as the holder's transfer
    // without this hold.
    let key = (h.token.clone(), h.wallet);
    let listed = state.wallet_holds.get(&key).cloned();
    unlist(state, &h, &p.hold);
    let checked = crate::compliance::check_into(
        state,
        tx.ctx,
        &h.token,
        &h.wallet,
        &to,
        h.amount,
        Mode::Holder,
        &mut Reasons::first(),
    );
    if let Err(r) = checked {
        if let Some(l) = listed {
            state.wallet_holds.insert(key, l);
        }
        return Err(r);
    }
    move_units(state, tx.ctx, &h.token, &h.wallet, &to, h.amount);
    use_approval(state, tx.ctx, &h.token, &h.wallet, &to, h.amount);
    state.holds.get_mut(&p.hold).expect("found above").state = HoldState::Executed;
    let reference = Reference::new(p.hold.as_str()).expect("request ids are references");
    tx.record(&h.token, Some(h.wallet), to, h.amount, TransferKind::Holder)
        .reference = Some(reference);
    Ok(())
}

pub(super) fn release_hold(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ReleaseHold,
) -> Result<(), Rejection> {
    let h = hold_of(state, &p.hold)?;
    open(&h, &p.hold)?;
    if tx.signer_wallet() != h.notary && tx.ctx.time < h.expiry {
        return Err(reject(
            RejectCode::NotTheNotary,
            format!(
                "only hold {}'s notary releases it before it expires at {}",
                p.hold, h.expiry
            ),
        ));
    }
    close(state, &h, &p.hold, HoldState::Released);
    Ok(())
}

/// After units left `wallet`, releases its holds of `token` until what
/// they hold fits in what is left: expired ones first (they hold nothing
/// already, which is how the holder could spend their units), then, when
/// the agent took held units (a forced move, a recovery, a revocation),
/// the newest first.
pub(crate) fn clamp_holds(
    state: &mut State,
    ctx: &BlockContext,
    token: &TokenId,
    wallet: &WalletAddress,
) {
    let key = (token.clone(), *wallet);
    let Some(listed) = state.wallet_holds.get(&key).cloned() else {
        return;
    };
    let left = balance(state, token, wallet).0;
    let mut total: u128 = listed
        .iter()
        .map(|id| state.holds.get(id).map_or(0, |h| h.amount.0))
        .sum();
    let expired = |h: &Hold| h.expiry <= ctx.time;
    let order = listed
        .iter()
        .filter(|id| state.holds.get(*id).is_some_and(expired))
        .chain(
            listed
                .iter()
                .rev()
                .filter(|id| !state.holds.get(*id).is_some_and(expired)),
        );
    let mut release = Vec::new();
    for id in order {
        if total <= left {
            break;
        }
        let h = state.holds.get(id).expect("listed holds exist");
        total -= h.amount.0;
        release.push(id.clone());
    }
    for id in release {
        let h = state.holds.get(&id).cloned().expect("listed holds exist");
        close(state, &h, &id, HoldState::Released);
    }
}
