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
    if let Some(r) = &p.redemption {
        // F5-10: the proceeds are put aside when the TSP files, so the
        // revocation can pay every holder it moves.
        let cash = token(state, &r.cash_token)?;
        if cash.kind != TokenKind::Cash || cash.currency.as_ref() != Some(&r.unit_price.currency) {
            return Err(reject(
                RejectCode::CurrencyMismatch,
                format!(
                    "{} is not a cash token in the redemption price's currency",
                    r.cash_token
                ),
            ));
        }
        let owed = p
            .amount
            .0
            .checked_mul(r.unit_price.minor.0)
            .map(Units)
            .ok_or_else(overflow)?;
        let from = tx.signer_wallet();
        check_cash_out(state, tx.ctx, &r.cash_token, &from, owed)?;
        let pool = crate::address::redemption_pool(&p.request);
        if !owed.is_zero() {
            move_units(state, tx.ctx, &r.cash_token, &from, &pool, owed);
            tx.record(&r.cash_token, Some(from), pool, owed, TransferKind::Escrow);
        }
        state.escrows.insert(pool, p.request.clone());
    }
    state.revocations.insert(
        p.request.clone(),
        RevocationRequest {
            tsp: org,
            token: p.token.clone(),
            amount: p.amount,
            revoked: None,
            redemption: p.redemption.clone(),
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
    let redemption = r.redemption.clone();
    let rev = revocation_wallet(&id);
    for m in p.moves.iter() {
        if m.lockup_until.is_some() {
            return Err(reject(
                RejectCode::InvalidField,
                "a revocation's moves carry no lock-up",
            ));
        }
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
        move_units(state, tx.ctx, &id, &m.wallet, &rev, m.amount);
        // Frozen units that were revoked are no longer frozen.
        clamp_freeze(state, &id, &m.wallet);
        tx.record(&id, Some(m.wallet), rev, m.amount, TransferKind::Revocation);
        if let Some(r) = &redemption {
            // Paid in the same transaction that takes the units.
            let pay = Units(m.amount.0 * r.unit_price.minor.0);
            let pool = crate::address::redemption_pool(&p.request);
            if !pay.is_zero() {
                move_units(state, tx.ctx, &r.cash_token, &pool, &m.wallet, pay);
                tx.record(
                    &r.cash_token,
                    Some(pool),
                    m.wallet,
                    pay,
                    TransferKind::Escrow,
                );
            }
        }
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
