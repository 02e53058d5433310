//! Issuance (F5-2..F5-7, ST-1): a TSP's request, its withdrawal, and the
//! named issuer's execution of exactly what was requested.

use super::*;

pub(super) fn request_issuance(
    state: &mut State,
    signer: &PublicKey,
    p: &RequestIssuance,
) -> Result<(), Rejection> {
    let org = org_with(state, signer, Role::Tsp)?;
    check_request(state, &org, p)?;
    state.issuances.insert(
        p.request.clone(),
        IssuanceRequest {
            tsp: org,
            terms: p.clone(),
            issued: None,
            withdrawn: false,
        },
    );
    Ok(())
}

/// What a request (or an offering, which becomes one) must be: a fresh id
/// and token for an asset of `org`, appraised within tolerance (SR-6), AP /
/// SP whole tokens (F5-2), an issuer other than the TSP (SR-1), allocations
/// adding up, consistent rules.
pub(super) fn check_request(
    state: &State,
    org: &OrgId,
    p: &RequestIssuance,
) -> Result<(), Rejection> {
    let org = org.clone();
    let asset = state
        .assets
        .get(&p.asset)
        .ok_or_else(|| unknown_asset(&p.asset))?;
    if asset.tsp != org {
        return Err(reject(
            RejectCode::NotTheTsp,
            format!("{} is registered with {}, not {org}", p.asset, asset.tsp),
        ));
    }
    if state.issuances.contains_key(&p.request)
        || state.revocations.contains_key(&p.request)
        || state.offerings.contains_key(&p.request)
    {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("request {} exists already", p.request),
        ));
    }
    if state.tokens.contains_key(&p.token)
        || state
            .issuances
            .values()
            .any(|r| r.terms.token == p.token && !r.withdrawn)
        || state
            .offerings
            .values()
            .any(|o| o.terms.token == p.token && o.phase != crate::state::OfferingPhase::Refunded)
    {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("token {} exists or is requested already", p.token),
        ));
    }
    // SR-6: the price must be backed by an appraisal within the network's
    // tolerance, which governance sets and no TSP chooses.
    let appraised = asset.appraisal.as_ref().ok_or_else(|| {
        reject(
            RejectCode::AppraisalMissing,
            format!("{} has no appraisal", p.asset),
        )
    })?;
    let tolerance = state.params.policy.appraisal_tolerance_bps;
    let ap = asset.price.minor.0;
    let diff = ap.abs_diff(appraised.minor.0);
    let within = diff
        .checked_mul(10_000)
        .zip(ap.checked_mul(u128::from(tolerance)))
        .map(|(d, t)| d <= t)
        .ok_or_else(overflow)?;
    if !within {
        return Err(reject(
            RejectCode::AppraisalOutOfTolerance,
            format!(
                "appraised at {appraised}, asked {}: more than the network's {tolerance} bps apart",
                asset.price
            ),
        ));
    }
    if p.unit_price.currency != asset.price.currency {
        return Err(reject(
            RejectCode::CurrencyMismatch,
            "the token price must be in the asset price's currency",
        ));
    }
    let sp = p.unit_price.minor.0;
    if sp == 0 {
        return Err(reject(
            RejectCode::ZeroAmount,
            "the token price must be above zero",
        ));
    }
    // F5-2: AP / SP whole tokens, exactly the amount requested.
    if ap % sp != 0 || Units(ap / sp) != p.amount {
        return Err(reject(
            RejectCode::NotWholeTokens,
            format!(
                "{} / {} is not {} whole tokens",
                asset.price, p.unit_price, p.amount
            ),
        ));
    }
    if p.expiry_date < p.issue_date {
        return Err(reject(
            RejectCode::InvalidField,
            "the expiry date is before the issue date",
        ));
    }
    let issuer = state
        .orgs
        .get(&p.issuer)
        .ok_or_else(|| unknown_org(&p.issuer))?;
    if p.issuer == org {
        return Err(reject(
            RejectCode::SeparationOfDuties,
            "a token's TSP and issuer must be different organisations (SR-1)",
        ));
    }
    if !issuer.roles.has(Role::Issuer) {
        return Err(reject(
            RejectCode::MissingRole,
            format!("{} is not an issuer", p.issuer),
        ));
    }
    unique_wallets(&p.allocations)?;
    if sum(&p.allocations)? != p.amount {
        return Err(reject(
            RejectCode::AllocationMismatch,
            format!(
                "the allocations add up to {}, not {}",
                sum(&p.allocations)?,
                p.amount
            ),
        ));
    }
    consistent_rules(&p.rules)
}

/// Rules that can be met: no country both allowed and denied, a transfer
/// limit over 1 to 31 days.
pub(super) fn consistent_rules(rules: &TokenRules) -> Result<(), Rejection> {
    if let Some(l) = &rules.transfer_limit {
        let days_ok = l.period != LimitPeriod::Rolling || (1..=LIMIT_DAYS_MAX).contains(&l.days);
        if l.max.is_zero() || !days_ok {
            return Err(reject(
                RejectCode::InvalidField,
                format!(
                    "a transfer limit allows at least one unit over 1 to {LIMIT_DAYS_MAX} rolling days or the calendar month"
                ),
            ));
        }
    }
    if rules
        .allowed_countries
        .iter()
        .any(|c| rules.denied_countries.contains(c))
    {
        return Err(reject(
            RejectCode::InvalidField,
            "a country is both allowed and denied",
        ));
    }
    Ok(())
}

pub(super) fn withdraw_issuance(
    state: &mut State,
    signer: &PublicKey,
    p: &WithdrawIssuance,
) -> Result<(), Rejection> {
    let org = org_with(state, signer, Role::Tsp)?;
    let r = state.issuances.get_mut(&p.request).ok_or_else(|| {
        reject(
            RejectCode::UnknownRequest,
            format!("no issuance request {}", p.request),
        )
    })?;
    if r.tsp != org {
        return Err(reject(
            RejectCode::NotTheTsp,
            format!("{} filed request {}, not {org}", r.tsp, p.request),
        ));
    }
    if r.issued.is_some() {
        return Err(reject(
            RejectCode::RequestAlreadyExecuted,
            format!(
                "request {} was carried out already; ask for a revocation instead",
                p.request
            ),
        ));
    }
    if r.withdrawn {
        return Err(reject(
            RejectCode::RequestWithdrawn,
            format!("request {} is withdrawn already", p.request),
        ));
    }
    r.withdrawn = true;
    Ok(())
}

pub(super) fn execute_issuance(
    state: &mut State,
    tx: &mut Tx<'_>,
    signer: &PublicKey,
    p: &ExecuteIssuance,
) -> Result<(), Rejection> {
    let org = org_with(state, signer, Role::Issuer)?;
    let r = state.issuances.get(&p.request).ok_or_else(|| {
        reject(
            RejectCode::UnknownRequest,
            format!("no issuance request {}", p.request),
        )
    })?;
    let terms = &r.terms;
    if terms.issuer != org {
        return Err(reject(
            RejectCode::NotTheNamedIssuer,
            format!("request {} names {}, not {org}", p.request, terms.issuer),
        ));
    }
    if r.issued.is_some() {
        return Err(reject(
            RejectCode::RequestAlreadyExecuted,
            format!("request {} was carried out already", p.request),
        ));
    }
    if r.withdrawn {
        return Err(reject(
            RejectCode::RequestWithdrawn,
            format!("{} withdrew request {}", r.tsp, p.request),
        ));
    }
    // ST-1: exactly what was requested, to exactly whom.
    if p.amount != terms.amount || p.allocations != terms.allocations {
        return Err(reject(
            RejectCode::IssuanceMismatch,
            format!(
                "request {} asks {} in {} allocations; {} in {} were offered",
                p.request,
                terms.amount,
                terms.allocations.len(),
                p.amount,
                p.allocations.len()
            ),
        ));
    }
    let token_id = terms.token.clone();
    let t = Token {
        kind: TokenKind::Security,
        issuer: org,
        tsp: Some(r.tsp.clone()),
        asset: Some(terms.asset.clone()),
        request: Some(p.request.clone()),
        unit_price: Some(terms.unit_price.clone()),
        currency: None,
        issue_date: terms.issue_date,
        expiry_date: Some(terms.expiry_date),
        issued: terms.amount,
        revoked: Units::ZERO,
        paused: false,
        rules: terms.rules.clone(),
        holders: 0,
        checkpoints: 0,
        rules_version: 0,
        rules_since: tx.ctx.height,
        rules_suspended: false,
        document_changes: 0,
        holder_identities: 0,
    };
    // Every investor must pass the token's rules on what they receive in
    // total: each allocation is checked against the state the allocations
    // before it leave (two wallets of one identity count together). If one is
    // refused, the new token and everything credited go again.
    let allocations = terms.allocations.clone();
    state.tokens.insert(token_id.clone(), t);
    for (n, a) in allocations.iter().enumerate() {
        let t = state.tokens.get(&token_id).expect("inserted above");
        if let Err(r) = check_receiver(state, tx.ctx, &token_id, t, None, &a.wallet, a.amount) {
            for earlier in &allocations[..n] {
                identity_holding(state, &token_id, &earlier.wallet, false);
                set_balance(state, &token_id, &earlier.wallet, Units::ZERO);
            }
            state.tokens.remove(&token_id);
            return Err(r);
        }
        credit(state, &token_id, &a.wallet, a.amount);
    }
    for a in allocations.iter() {
        tx.record(&token_id, None, a.wallet, a.amount, TransferKind::Issuance);
        // The allocation's own lock-up (F5-6 terms): these units wait.
        if let Some(until) = a.lockup_until.filter(|d| *d > tx.ctx.date()) {
            lock_up(state, &token_id, a.wallet, until, a.amount)?;
        }
    }
    state
        .issuances
        .get_mut(&p.request)
        .expect("found above")
        .issued = Some(p.amount);
    Ok(())
}

/// Locks `units` more of `wallet`'s `token` until `until`. A wallet has one
/// lock-up per token: units issued to it again (a second subscription to
/// one offering) join it, until the later of the two days.
pub(super) fn lock_up(
    state: &mut State,
    token: &TokenId,
    wallet: WalletAddress,
    until: Date,
    units: Units,
) -> Result<(), Rejection> {
    let key = (token.clone(), wallet);
    let lockup = match state.lockups.get(&key) {
        Some(l) => Lockup {
            until: l.until.max(until),
            units: l.units.checked_add(units).ok_or_else(overflow)?,
        },
        None => Lockup { until, units },
    };
    state.lockups.insert(key, lockup);
    Ok(())
}
