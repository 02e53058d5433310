//! Profit distributions (F5-9): checkpoints, pro-rata entitlements and
//! payments.

use super::*;

pub(super) fn create_checkpoint(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &CreateCheckpoint,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let ctx = tx.ctx;
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

pub(super) fn record_payment(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RecordPayment,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
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
