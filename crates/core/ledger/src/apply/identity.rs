//! Identity (SR-5): wallets bound to DIDs with their owners' consent, and
//! claims recorded as digests.

use super::*;

pub(super) fn register_wallet(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RegisterWallet,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = any_org(state, signer)?;
    let roles = state.orgs[&org].roles;
    if ![
        Role::Tsp,
        Role::Exchange,
        Role::Custodian,
        Role::ClaimIssuer,
    ]
    .iter()
    .any(|r| roles.has(*r))
    {
        return Err(reject(
            RejectCode::MissingRole,
            format!(
                "{org} onboards no one: a TSP, exchange, custodian or claim issuer binds wallets"
            ),
        ));
    }
    check_binding(tx.chain_id, p)?;
    if let Some(d) = state.wallets.get(&p.wallet) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("wallet {} is bound to {d} already", p.wallet),
        ));
    }
    bind(state, p.wallet, &p.did);
    Ok(())
}

pub(super) fn add_claim(state: &mut State, tx: &mut Tx<'_>, p: &AddClaim) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = org_with(state, signer, Role::ClaimIssuer)?;
    did_key(&p.did)?;
    if p.topic == ClaimTopic::JURISDICTION && p.country.is_none() {
        return Err(reject(
            RejectCode::InvalidField,
            "a jurisdiction claim needs a country",
        ));
    }
    state.claims.insert(
        (p.did.clone(), p.topic, org),
        Claim {
            country: p.country,
            digest: p.digest,
            expiry_date: p.expiry_date,
            revoked: false,
        },
    );
    Ok(())
}

pub(super) fn revoke_claim(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RevokeClaim,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = org_with(state, signer, Role::ClaimIssuer)?;
    let claim = state
        .claims
        .get_mut(&(p.did.clone(), p.topic, org.clone()))
        .ok_or_else(|| {
            reject(
                RejectCode::UnknownClaim,
                format!("{org} has no claim of topic {} about {}", p.topic.0, p.did),
            )
        })?;
    claim.revoked = true;
    Ok(())
}
