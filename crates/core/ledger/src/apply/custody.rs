//! Custody (SR-3, ST-3): custodial wallets opened with the holder's consent,
//! moved only on the holder's signature with the custodian's co-signature.

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
        },
    );
    bind(state, wallet, &p.holder);
    Ok(())
}

/// What a custodian co-signs: the holder's instruction, bound to the holder's
/// key and nonce so it cannot be replayed.
pub fn cosign_message(signer: &PublicKey, nonce: u64, p: &CustodialTransfer) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&signer.encode());
    m.extend_from_slice(&nonce.encode());
    m.extend_from_slice(&p.custodian.encode());
    m.extend_from_slice(&p.token.encode());
    m.extend_from_slice(&p.to.encode());
    m.extend_from_slice(&p.amount.encode());
    m.extend_from_slice(&p.reference.encode());
    m
}

pub(super) fn custodial_transfer(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    p: &CustodialTransfer,
) -> Result<(), Rejection> {
    let custodian = state
        .orgs
        .get(&p.custodian)
        .ok_or_else(|| unknown_org(&p.custodian))?;
    // ST-3: only the holder's own key instructs a move: the key of the
    // holder's DID, or a wallet the holder bound to it (a binding carries the
    // DID's signature, so nobody else can make one).
    let (holder, bound) = match state.wallets.get(&signer.address()) {
        Some(did) => (did.clone(), true),
        None => (did_of_key(signer), false),
    };
    let from = custodial_wallet(&p.custodian, &holder);
    if !state.custody.contains_key(&from) {
        return Err(if bound {
            reject(
                RejectCode::UnknownCustodialWallet,
                format!("{} keeps no wallet for {holder}", p.custodian),
            )
        } else {
            reject(
                RejectCode::HolderAuthorizationMissing,
                format!(
                    "the signer {signer} is neither a wallet bound to an identity nor the key of a DID \
                     {} keeps a wallet for; a custodial wallet moves only on its holder's own signature",
                    p.custodian
                ),
            )
        });
    }
    let message = cosign_message(signer, tx.stx.tx.nonce, p);
    verify(
        &custodian.key,
        Domain::CustodianCosign,
        tx.chain_id,
        &message,
        &p.cosignature,
    )
    .map_err(|_| {
        reject(
            RejectCode::BadCosignature,
            format!(
                "the co-signature is not {}'s over this instruction",
                p.custodian
            ),
        )
    })?;
    check(
        state,
        tx.ctx,
        &p.token,
        &from,
        &p.to,
        p.amount,
        Mode::Holder,
    )?;
    move_units(state, &p.token, &from, &p.to, p.amount);
    let r = tx.record(
        &p.token,
        Some(from),
        p.to,
        p.amount,
        TransferKind::Custodial,
    );
    r.reference = p.reference.clone();
    r.custodian_signature = Some(p.cosignature);
    Ok(())
}
