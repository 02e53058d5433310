//! Custody (SR-3, ST-3): custodial wallets opened with the holder's consent,
//! moved only by the custodian carrying the holder's signed authorization,
//! each authorization used once, in order, before its expiry.

use super::*;

pub(super) fn open_custodial_wallet(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &OpenCustodialWallet,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = org_with(state, signer, Role::Custodian)?;
    check_custody_consent(tx.chain_id, &org, &p.holder, &p.consent)?;
    let wallet = custodial_wallet(&org, &p.holder);
    if state.custody.contains_key(&wallet) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("{org} keeps a wallet for {} already: {wallet}", p.holder),
        ));
    }
    state.custody.insert(
        wallet,
        Custody {
            custodian: org,
            holder: p.holder.clone(),
            next_authorization: 0,
        },
    );
    bind(state, wallet, &p.holder);
    Ok(())
}

/// What a holder signs to authorize a custodial transfer: the custodian,
/// the instruction, the authorization's number and expiry (the key is the
/// signer; the chain id is in the signature's domain).
pub fn authorization_message(custodian: &OrgId, p: &CustodialTransfer) -> Vec<u8> {
    let a = &p.authorization;
    let mut m = Vec::new();
    m.extend_from_slice(&custodian.encode());
    m.extend_from_slice(&p.token.encode());
    m.extend_from_slice(&p.to.encode());
    m.extend_from_slice(&p.amount.encode());
    m.extend_from_slice(&p.reference.encode());
    m.extend_from_slice(&a.number.encode());
    m.extend_from_slice(&a.valid_until.encode());
    m
}

pub(super) fn custodial_transfer(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    p: &CustodialTransfer,
) -> Result<(), Rejection> {
    let custodian = org_with(state, signer, Role::Custodian)?;
    let a = &p.authorization;
    // ST-3: only the holder's own key authorizes a move: the key of the
    // holder's DID, or a wallet the holder bound to it (a binding carries the
    // DID's signature, so nobody else can make one).
    let (holder, bound) = match state.wallets.get(&a.key.address()) {
        Some(did) => (did.clone(), true),
        None => (did_of_key(&a.key), false),
    };
    let from = custodial_wallet(&custodian, &holder);
    let Some(custody) = state.custody.get(&from) else {
        return Err(if bound {
            reject(
                RejectCode::UnknownCustodialWallet,
                format!("{custodian} keeps no wallet for {holder}"),
            )
        } else {
            reject(
                RejectCode::HolderAuthorizationMissing,
                format!(
                    "the authorization's key {} is neither a wallet bound to an identity nor the key of a DID \
                     {custodian} keeps a wallet for; a custodial wallet moves only on its holder's own signature",
                    a.key
                ),
            )
        });
    };
    let next = custody.next_authorization;
    verify(
        &a.key,
        Domain::CustodyAuthorization,
        tx.chain_id,
        &authorization_message(&custodian, p),
        &a.signature,
    )
    .map_err(|_| {
        reject(
            RejectCode::BadHolderAuthorization,
            format!(
                "the authorization is not {}'s signature over this instruction to {custodian}",
                a.key
            ),
        )
    })?;
    if a.valid_until < tx.ctx.time {
        return Err(reject(
            RejectCode::AuthorizationExpired,
            format!(
                "the authorization was valid until {} ms, and the block is at {} ms",
                a.valid_until.0, tx.ctx.time.0
            ),
        ));
    }
    if a.number != next {
        return Err(reject(
            RejectCode::AuthorizationNotNext,
            format!(
                "the authorization is number {}, and wallet {from}'s next is {next}",
                a.number
            ),
        ));
    }
    check(
        state,
        tx.ctx,
        &p.token,
        &from,
        &p.to,
        p.amount,
        Mode::Holder,
    )?;
    move_units(state, tx.ctx, &p.token, &from, &p.to, p.amount);
    use_approval(state, tx.ctx, &p.token, &from, &p.to, p.amount);
    if let Some(c) = state.custody.get_mut(&from) {
        c.next_authorization = next + 1;
    }
    let r = tx.record(
        &p.token,
        Some(from),
        p.to,
        p.amount,
        TransferKind::Custodial,
    );
    r.reference = p.reference.clone();
    r.holder_authorization = Some(a.signature);
    Ok(())
}
