//! Revocation (F5-10, ST-2, L-2): a TSP's request and the issuer's moves
//! into the token's revocation wallet, exactly the requested amount.

use super::*;

pub(super) fn request_revocation(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RequestRevocation,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = tsp_of_token(state, signer, &p.token)?;
    if state.revocations.contains_key(&p.request) || state.issuances.contains_key(&p.request) {
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

pub(super) fn execute_revocation(
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
        clamp_freeze(state, &id, &m.wallet);
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
