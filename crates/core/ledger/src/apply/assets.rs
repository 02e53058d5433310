//! Assets (F5-1, SR-6, ST-6): ownership attested by a registry,
//! registration by a TSP, and appraisal.

use super::*;

pub(super) fn register_asset(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RegisterAsset,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = org_with(state, signer, Role::Tsp)?;
    did_key(&p.owner)?;
    // ST-6: the owner is who a registry the network trusts attested.
    let attested = state.ownerships.get(&p.asset).filter(|o| {
        state
            .orgs
            .get(&o.registry)
            .is_some_and(|r| r.roles.has(Role::AssetRegistry))
    });
    if attested.is_none_or(|o| o.owner != p.owner) {
        return Err(reject(
            RejectCode::OwnershipUnproven,
            format!(
                "no asset registry attested {} as the owner of {}",
                p.owner, p.asset
            ),
        ));
    }
    if state.assets.contains_key(&p.asset) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("asset {} exists already", p.asset),
        ));
    }
    if p.price.minor.0 == 0 {
        return Err(reject(
            RejectCode::ZeroAmount,
            "the asset's price must be above zero",
        ));
    }
    state.assets.insert(
        p.asset.clone(),
        Asset {
            tsp: org,
            owner: p.owner.clone(),
            kind: p.kind,
            description: p.description,
            price: p.price.clone(),
            appraiser: None,
            appraisal: None,
        },
    );
    Ok(())
}

pub(super) fn record_appraisal(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RecordAppraisal,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = org_with(state, signer, Role::Appraiser)?;
    let asset = state
        .assets
        .get_mut(&p.asset)
        .ok_or_else(|| unknown_asset(&p.asset))?;
    if asset.price.currency != p.value.currency {
        return Err(reject(
            RejectCode::CurrencyMismatch,
            format!(
                "the asset is priced in {}, the appraisal is in {}",
                asset.price.currency.code(),
                p.value.currency.code()
            ),
        ));
    }
    asset.appraiser = Some(org);
    asset.appraisal = Some(p.value.clone());
    Ok(())
}

pub(super) fn record_ownership(
    state: &mut State,
    tx: &Tx<'_>,
    p: &RecordOwnership,
) -> Result<(), Rejection> {
    let registry = org_with(state, &tx.stx.tx.signer, Role::AssetRegistry)?;
    did_key(&p.owner)?;
    if state.assets.contains_key(&p.asset) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("{} is registered already; its owner is fixed", p.asset),
        ));
    }
    state.ownerships.insert(
        p.asset.clone(),
        crate::state::Ownership {
            owner: p.owner.clone(),
            registry,
            credential: p.credential,
        },
    );
    Ok(())
}
