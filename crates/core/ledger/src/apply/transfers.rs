//! Holder transfers (L-1, F6-7).

use super::*;

pub(super) fn transfer(state: &mut State, tx: &mut Tx<'_>, p: &Transfer) -> Result<(), Rejection> {
    let ctx = tx.ctx;
    let from = tx.signer_wallet();
    check(state, ctx, &p.token, &from, &p.to, p.amount, Mode::Holder)?;
    move_units(state, tx.ctx, &p.token, &from, &p.to, p.amount);
    use_approval(state, ctx, &p.token, &from, &p.to, p.amount);
    tx.record(&p.token, Some(from), p.to, p.amount, TransferKind::Holder)
        .reference = p.reference.clone();
    Ok(())
}
