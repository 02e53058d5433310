//! Staking (C-2): validators bond stake behind a consensus key; any
//! organisation delegates to them.

use super::*;

pub(super) fn bond_validator(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &BondValidator,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
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
    let bonded = state
        .validators
        .get(&org)
        .map_or(Stake::ZERO, |v| v.bonded)
        .checked_add(p.amount)
        .ok_or_else(overflow)?;
    take_stake(state, &org, p.amount)?;
    let v = state.validators.entry(org).or_insert(Validator {
        consensus_key: p.consensus_key,
        bonded: Stake::ZERO,
        delegated: Stake::ZERO,
        tombstoned: false,
    });
    v.consensus_key = p.consensus_key;
    v.bonded = bonded;
    Ok(())
}

pub(super) fn delegate(state: &mut State, tx: &mut Tx<'_>, p: &Delegate) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = any_org(state, signer)?;
    if !state.validators.contains_key(&p.validator) {
        return Err(reject(
            RejectCode::UnknownValidator,
            format!("{} is not a bonded validator", p.validator),
        ));
    }
    refuse_tombstoned(state, &p.validator)?;
    let key = (org.clone(), p.validator.clone());
    let delegated = state.validators[&p.validator]
        .delegated
        .checked_add(p.amount)
        .ok_or_else(overflow)?;
    let delegation = state
        .delegations
        .get(&key)
        .copied()
        .unwrap_or(Stake::ZERO)
        .checked_add(p.amount)
        .ok_or_else(overflow)?;
    take_stake(state, &org, p.amount)?;
    state
        .validators
        .get_mut(&p.validator)
        .expect("checked")
        .delegated = delegated;
    state.delegations.insert(key, delegation);
    Ok(())
}

pub(super) fn undelegate(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &Delegate,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = any_org(state, signer)?;
    let key = (org.clone(), p.validator.clone());
    let delegated = state.delegations.get(&key).copied().unwrap_or(Stake::ZERO);
    let left = delegated
        .checked_sub(p.amount)
        .filter(|_| !p.amount.is_zero());
    let Some(left) = left else {
        return Err(reject(
            RejectCode::InsufficientStake,
            format!(
                "{org} delegated {delegated} to {}; cannot withdraw {}",
                p.validator, p.amount
            ),
        ));
    };
    let free = state
        .stake
        .get(&org)
        .copied()
        .unwrap_or(Stake::ZERO)
        .checked_add(p.amount)
        .ok_or_else(overflow)?;
    if left.is_zero() {
        state.delegations.remove(&key);
    } else {
        state.delegations.insert(key, left);
    }
    // A validator's delegated total includes every delegation to it.
    let v = state
        .validators
        .get_mut(&p.validator)
        .expect("a delegation names a validator");
    v.delegated = v
        .delegated
        .checked_sub(p.amount)
        .expect("a validator's delegated total covers each delegation");
    state.stake.insert(org, free);
    Ok(())
}

pub(super) fn refuse_tombstoned(state: &State, org: &OrgId) -> Result<(), Rejection> {
    if state.validators.get(org).is_some_and(|v| v.tombstoned) {
        return Err(reject(
            RejectCode::Tombstoned,
            format!("{org} was slashed for equivocating"),
        ));
    }
    Ok(())
}

pub(super) fn take_stake(state: &mut State, org: &OrgId, amount: Stake) -> Result<(), Rejection> {
    let free = state.stake.get(org).copied().unwrap_or(Stake::ZERO);
    let left = free.checked_sub(amount).filter(|_| !amount.is_zero());
    let Some(left) = left else {
        return Err(reject(
            RejectCode::InsufficientStake,
            format!("{org} has {free} free stake; {amount} asked"),
        ));
    };
    if left.is_zero() {
        state.stake.remove(org);
    } else {
        state.stake.insert(org.clone(), left);
    }
    Ok(())
}
