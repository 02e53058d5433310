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
    let amount = p.amount.0;
    let bonded = state
        .validators
        .get(&org)
        .map_or(0, |v| v.bonded)
        .checked_add(amount)
        .ok_or_else(overflow)?;
    take_stake(state, &org, amount)?;
    let v = state.validators.entry(org).or_insert(Validator {
        consensus_key: p.consensus_key,
        bonded: 0,
        delegated: 0,
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
    let amount = p.amount.0;
    let key = (org.clone(), p.validator.clone());
    let delegated = state.validators[&p.validator]
        .delegated
        .checked_add(amount)
        .ok_or_else(overflow)?;
    let delegation = state
        .delegations
        .get(&key)
        .copied()
        .unwrap_or(0)
        .checked_add(amount)
        .ok_or_else(overflow)?;
    take_stake(state, &org, amount)?;
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
    let delegated = state.delegations.get(&key).copied().unwrap_or(0);
    let amount = p.amount.0;
    let free = state
        .stake
        .get(&org)
        .copied()
        .unwrap_or(0)
        .checked_add(amount)
        .ok_or_else(overflow)?;
    if amount == 0 || amount > delegated {
        return Err(reject(
            RejectCode::InsufficientStake,
            format!(
                "{org} delegated {delegated} to {}; cannot withdraw {}",
                p.validator, p.amount
            ),
        ));
    }
    if delegated == amount {
        state.delegations.remove(&key);
    } else {
        state.delegations.insert(key, delegated - amount);
    }
    // A validator's delegated total includes every delegation to it.
    state
        .validators
        .get_mut(&p.validator)
        .expect("a delegation names a validator")
        .delegated -= amount;
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

pub(super) fn take_stake(state: &mut State, org: &OrgId, amount: u128) -> Result<(), Rejection> {
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
