//! Cash tokens and settlement: a central bank's CBDC token, and delivery
//! versus payment in one transaction, checked on its combined effect.

use super::*;

pub(super) fn issue_cash_token(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &IssueCashToken,
) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let ctx = tx.ctx;
    // A central bank's CBDC, or an escrow bank's deposit token: cash backed
    // 1:1 by the fiat money it holds.
    let org = any_org(state, signer)?;
    let roles = state.orgs.get(&org).expect("any_org found it").roles;
    let fits = if roles.has(Role::CentralBank) {
        p.currency.kind() == CurrencyKind::Cbdc
    } else if roles.has(Role::EscrowBank) {
        p.currency.kind() == CurrencyKind::Fiat
    } else {
        return Err(reject(
            RejectCode::MissingRole,
            format!("{org} is neither a central bank nor an escrow bank"),
        ));
    };
    if !fits {
        return Err(reject(
            RejectCode::InvalidField,
            "a central bank's cash token carries a CBDC currency, an escrow bank's deposit token a fiat one",
        ));
    }
    if state.tokens.contains_key(&p.token) {
        return Err(reject(
            RejectCode::AlreadyExists,
            format!("token {} exists already", p.token),
        ));
    }
    state.tokens.insert(
        p.token.clone(),
        Token {
            kind: TokenKind::Cash,
            issuer: org,
            tsp: None,
            asset: None,
            request: None,
            unit_price: None,
            currency: Some(p.currency.clone()),
            issue_date: ctx.date(),
            expiry_date: None,
            issued: Units::ZERO,
            revoked: Units::ZERO,
            paused: false,
            rules: empty_rules(),
            holders: 0,
            checkpoints: 0,
            rules_version: 0,
            rules_since: ctx.height,
            rules_suspended: false,
            document_changes: 0,
            holder_identities: 0,
        },
    );
    Ok(())
}

pub(super) fn mint_cash(state: &mut State, tx: &mut Tx<'_>, p: &MintCash) -> Result<(), Rejection> {
    let signer = &tx.stx.tx.signer;
    let org = any_org(state, signer)?;
    let roles = state.orgs.get(&org).expect("any_org found it").roles;
    if !roles.has(Role::CentralBank) && !roles.has(Role::EscrowBank) {
        return Err(reject(
            RejectCode::MissingRole,
            format!("{org} is neither a central bank nor an escrow bank"),
        ));
    }
    let t = token(state, &p.token)?;
    if t.kind != TokenKind::Cash || t.issuer != org {
        return Err(reject(
            RejectCode::NotTokenAgent,
            format!("{org} does not issue {}", p.token),
        ));
    }
    if p.amount.is_zero() {
        return Err(reject(RejectCode::ZeroAmount, "mint at least one unit"));
    }
    did_of(state, &p.to)?;
    let issued = t.issued.checked_add(p.amount).ok_or_else(overflow)?;
    state.tokens.get_mut(&p.token).expect("checked").issued = issued;
    credit(state, &p.token, &p.to, p.amount);
    tx.record(&p.token, None, p.to, p.amount, TransferKind::Mint);
    Ok(())
}

pub(super) fn redeem_cash(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RedeemCash,
) -> Result<(), Rejection> {
    // The holder's own wallet, by its own key: nobody else can hand a
    // holder's money back.
    let wallet = tx.stx.tx.signer.address();
    let t = token(state, &p.token)?;
    if t.kind != TokenKind::Cash {
        return Err(reject(
            RejectCode::InvalidField,
            format!(
                "{} is not a cash token: only cash is redeemed at its bank",
                p.token
            ),
        ));
    }
    if p.amount.is_zero() {
        return Err(reject(RejectCode::ZeroAmount, "redeem at least one unit"));
    }
    did_of(state, &wallet)?;
    check_cash_out(state, tx.ctx, &p.token, &wallet, p.amount)?;
    let out = revocation_wallet(&p.token);
    let revoked = t.revoked.checked_add(p.amount).ok_or_else(overflow)?;
    move_units(state, tx.ctx, &p.token, &wallet, &out, p.amount);
    state.tokens.get_mut(&p.token).expect("checked").revoked = revoked;
    tx.record(
        &p.token,
        Some(wallet),
        out,
        p.amount,
        TransferKind::Redemption,
    );
    Ok(())
}

/// Moves `legs` in order as holders' transfers. Each leg is checked against
/// the state the legs before it leave, so the whole meets every rule on its
/// combined effect (free balance, per-identity limit, holder count):
/// applied, it is what the same legs applied one by one in this order would
/// give. A refused leg puts the earlier ones back, and is the answer.
pub(super) fn holder_legs(
    state: &mut State,
    ctx: &BlockContext,
    legs: &[Leg],
) -> Result<(), Rejection> {
    let mut undo = Undo::default();
    for leg in legs {
        if let Err(r) = check(
            state,
            ctx,
            &leg.token,
            &leg.from,
            &leg.to,
            leg.amount,
            Mode::Holder,
        ) {
            undo.restore(state);
            return Err(r);
        }
        undo.remember(state, &leg.token, &leg.from, &leg.to);
        move_units(state, ctx, &leg.token, &leg.from, &leg.to, leg.amount);
        if let Some(n) = use_approval(state, ctx, &leg.token, &leg.from, &leg.to, leg.amount) {
            let (id, from, to) = (leg.token.clone(), leg.from, leg.to);
            undo.approvals.push((id, from, to, leg.amount, n));
        }
    }
    Ok(())
}

pub(super) fn empty_rules() -> TokenRules {
    TokenRules {
        required_topics: BoundedVec::default(),
        allowed_countries: BoundedVec::default(),
        denied_countries: BoundedVec::default(),
        max_holders: 0,
        max_balance_per_identity: Units::ZERO,
        lockup_until: None,
        transfer_approval: false,
        category_limits: BoundedVec::default(),
        transfer_limit: None,
        max_ownership_bps: 0,
    }
}

/// The digest the owners of a settlement's wallets approve.
pub fn settlement_digest(signer: &PublicKey, nonce: u64, legs: &[Leg]) -> Vec<u8> {
    let mut m = signer.encode().to_vec();
    m.extend_from_slice(&nonce.encode());
    for l in legs {
        m.extend_from_slice(&l.encode());
    }
    Hash::digest(b"tranche/settlement/v1", &m).0.to_vec()
}

pub(super) fn settle(state: &mut State, tx: &mut Tx<'_>, p: &Settle) -> Result<(), Rejection> {
    if p.legs.is_empty() {
        return Err(reject(
            RejectCode::InvalidField,
            "a settlement needs at least one leg",
        ));
    }
    for leg in p.legs.iter() {
        refuse_revocation_wallet(&leg.token, &leg.from)?;
    }
    let signer = tx.stx.tx.signer;
    let digest = settlement_digest(&signer, tx.stx.tx.nonce, &p.legs);
    for leg in p.legs.iter() {
        if leg.from == signer.address() {
            continue;
        }
        let approved = p.approvals.iter().any(|a| {
            a.key.address() == leg.from
                && verify(
                    &a.key,
                    Domain::Transaction,
                    tx.chain_id,
                    &digest,
                    &a.signature,
                )
                .is_ok()
        });
        if !approved {
            return Err(reject(
                RejectCode::MissingApproval,
                format!(
                    "wallet {} gives {} {} without its owner's approval",
                    leg.from, leg.amount, leg.token
                ),
            ));
        }
    }
    holder_legs(state, tx.ctx, &p.legs)?;
    for leg in p.legs.iter() {
        tx.record(
            &leg.token,
            Some(leg.from),
            leg.to,
            leg.amount,
            TransferKind::Settlement,
        );
    }
    Ok(())
}
