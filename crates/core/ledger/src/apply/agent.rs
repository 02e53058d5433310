//! Agent powers of a token's issuer: freezes, pause, forced transfers and
//! recovery of lost wallets, each recorded with the agent.

use super::*;

pub(super) fn set_frozen(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &SetFrozen,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let agent = agent_of(state, signer, &p.token)?;
    change_freeze(state, &p.token, &p.wallet, |f| f.all = p.frozen);
    tx.events.push(agent_event(
        &p.token,
        agent,
        if p.frozen { "freeze" } else { "unfreeze" },
    ));
    Ok(())
}

pub(super) fn freeze_partial(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &FreezePartial,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
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
    change_freeze(state, &p.token, &p.wallet, |f| f.amount = p.amount);
    tx.events
        .push(agent_event(&p.token, agent, "freeze_partial"));
    Ok(())
}

pub(super) fn set_paused(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &SetPaused,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
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

pub(super) fn forced_transfer(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ForcedTransfer,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let ctx = tx.ctx;
    let agent = agent_of(state, signer, &p.token)?;
    check(state, ctx, &p.token, &p.from, &p.to, p.amount, Mode::Forced)?;
    move_units(state, tx.ctx, &p.token, &p.from, &p.to, p.amount);
    // Frozen units that were moved are no longer frozen.
    clamp_freeze(state, &p.token, &p.from);
    tx.record(&p.token, Some(p.from), p.to, p.amount, TransferKind::Forced)
        .reason = Some(p.reason.clone());
    tx.events
        .push(agent_event(&p.token, agent, "forced_transfer"));
    Ok(())
}

pub(super) fn forced_moves(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ForcedMoves,
) -> Result<(), Rejection> {
    if p.moves.is_empty() {
        return Err(reject(
            RejectCode::InvalidField,
            "forced moves need at least one move",
        ));
    }
    let signer = tx.stx.tx.signer;
    let mut agent = None;
    for m in p.moves.iter() {
        agent = Some(agent_of(state, &signer, &m.token)?);
    }
    // Each move is checked against the state the moves before it leave (a
    // seized unit may be returned in the same transaction); a refused move
    // puts the earlier ones back.
    let mut undo = Undo::default();
    for m in p.moves.iter() {
        if let Err(r) = check(
            state,
            tx.ctx,
            &m.token,
            &m.from,
            &m.to,
            m.amount,
            Mode::Forced,
        ) {
            undo.restore(state);
            return Err(r);
        }
        undo.remember(state, &m.token, &m.from, &m.to);
        move_units(state, tx.ctx, &m.token, &m.from, &m.to, m.amount);
        // Frozen units that were moved are no longer frozen.
        clamp_freeze(state, &m.token, &m.from);
    }
    let agent = agent.expect("at least one move");
    let mut tokens = std::collections::BTreeSet::new();
    for m in p.moves.iter() {
        tx.record(&m.token, Some(m.from), m.to, m.amount, TransferKind::Forced)
            .reason = Some(p.reason.clone());
        tokens.insert(m.token.clone());
    }
    for token in tokens {
        tx.events
            .push(agent_event(&token, agent.clone(), "forced_moves"));
    }
    Ok(())
}

pub(super) fn recover_wallet(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RecoverWallet,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let ctx = tx.ctx;
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
    move_units(state, tx.ctx, &p.token, &p.lost, &p.new, amount);
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
