//! Token administration by the token's agent over its life: rules replaced
//! (each version kept) and suspended, trusted claim issuers per topic,
//! documents with their history, and pre-approved transfers.

use super::*;
use crate::state::{Document, DocumentChange, RuleVersion};

pub(super) fn set_token_rules(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &SetTokenRules,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    consistent_rules(&p.rules)?;
    let t = state.tokens.get(&p.token).expect("agent_of found it");
    if t.kind != TokenKind::Security {
        return Err(reject(
            RejectCode::InvalidField,
            format!("{} is a cash token: it has no compliance rules", p.token),
        ));
    }
    let height = tx.ctx.height;
    let kept = RuleVersion {
        rules: t.rules.clone(),
        since: t.rules_since,
        until: height,
    };
    let version = t.rules_version;
    let next = version.checked_add(1).ok_or_else(overflow)?;
    state.rule_versions.insert((p.token.clone(), version), kept);
    let t = state.tokens.get_mut(&p.token).expect("agent_of found it");
    t.rules = p.rules.clone();
    t.rules_version = next;
    t.rules_since = height;
    tx.events.push(agent_event(&p.token, agent, "set_rules"));
    Ok(())
}

pub(super) fn set_rule_checks(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &SetRuleChecks,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    let t = state.tokens.get_mut(&p.token).expect("agent_of found it");
    t.rules_suspended = p.suspended;
    let action = if p.suspended {
        "suspend_rules"
    } else {
        "resume_rules"
    };
    tx.events.push(agent_event(&p.token, agent, action));
    Ok(())
}

pub(super) fn set_trusted_issuers(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &SetTrustedIssuers,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    let mut seen = std::collections::BTreeSet::new();
    for org in p.issuers.iter() {
        let o = state.orgs.get(org).ok_or_else(|| unknown_org(org))?;
        if !o.roles.has(Role::ClaimIssuer) {
            return Err(reject(
                RejectCode::NotClaimIssuer,
                format!("{org} does not hold the claim-issuer role"),
            ));
        }
        if !seen.insert(org) {
            return Err(reject(
                RejectCode::InvalidField,
                format!("{org} is named twice"),
            ));
        }
    }
    let key = (p.token.clone(), p.topic);
    if p.issuers.is_empty() {
        state.trusted_issuers.remove(&key);
    } else {
        state.trusted_issuers.insert(key, p.issuers.clone());
    }
    tx.events
        .push(agent_event(&p.token, agent, "set_trusted_issuers"));
    Ok(())
}

pub(super) fn set_document(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &SetDocument,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    let document = Document {
        uri: p.uri.clone(),
        digest: p.digest,
        height: tx.ctx.height,
    };
    record_document(state, &p.token, &p.name, Some(document), tx.ctx.height)?;
    tx.events.push(agent_event(&p.token, agent, "set_document"));
    Ok(())
}

pub(super) fn remove_document(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &RemoveDocument,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    if !state
        .documents
        .contains_key(&(p.token.clone(), p.name.clone()))
    {
        return Err(reject(
            RejectCode::UnknownDocument,
            format!("{} has no document named {}", p.token, p.name),
        ));
    }
    record_document(state, &p.token, &p.name, None, tx.ctx.height)?;
    tx.events
        .push(agent_event(&p.token, agent, "remove_document"));
    Ok(())
}

/// Puts `document` under `name` (`None`: removes it) and appends the change
/// to the token's document history.
fn record_document(
    state: &mut State,
    id: &TokenId,
    name: &DocumentName,
    document: Option<Document>,
    height: u64,
) -> Result<(), Rejection> {
    let t = state.tokens.get_mut(id).expect("agent_of found it");
    let n = t.document_changes;
    t.document_changes = n.checked_add(1).ok_or_else(overflow)?;
    let key = (id.clone(), name.clone());
    match &document {
        Some(d) => state.documents.insert(key, d.clone()),
        None => state.documents.remove(&key),
    };
    state.document_history.insert(
        (id.clone(), n),
        DocumentChange {
            name: name.clone(),
            document,
            height,
        },
    );
    Ok(())
}

pub(super) fn set_limit_exemption(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &SetLimitExemption,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    let key = (p.token.clone(), p.did.clone());
    if p.exempt {
        state.limit_exemptions.insert(key, true);
    } else {
        state.limit_exemptions.remove(&key);
    }
    let action = if p.exempt { "exempt" } else { "unexempt" };
    tx.events.push(agent_event(&p.token, agent, action));
    Ok(())
}

pub(super) fn approve_transfer(
    state: &mut State,
    tx: &mut Tx<'_>,
    p: &ApproveTransfer,
) -> Result<(), Rejection> {
    let agent = agent_of(state, &tx.stx.tx.signer, &p.token)?;
    if p.amount.is_zero() {
        return Err(reject(
            RejectCode::ZeroAmount,
            "approve a transfer of at least one unit",
        ));
    }
    if p.from == p.to {
        return Err(reject(
            RejectCode::InvalidField,
            "a transfer goes from one wallet to another",
        ));
    }
    let key = (p.token.clone(), p.from, p.to, p.amount);
    let n = state.transfer_approvals.get(&key).copied().unwrap_or(0);
    let n = n.checked_add(1).ok_or_else(overflow)?;
    state.transfer_approvals.insert(key, n);
    tx.events
        .push(agent_event(&p.token, agent, "approve_transfer"));
    Ok(())
}

/// After a holder transfer: counts it against its identity's transfer
/// limit if the token has one, and uses one of the agent's approvals of it
/// if the token's rules require one (the check before found it). Returns the count it
/// overwrote, for a settlement to put back if a later leg is refused.
pub(super) fn use_approval(
    state: &mut State,
    ctx: &BlockContext,
    id: &TokenId,
    from: &WalletAddress,
    to: &WalletAddress,
    amount: Units,
) -> Option<u32> {
    let t = state.tokens.get(id).expect("the transfer was checked");
    let limited = t.rules.transfer_limit.is_some();
    let approved = t.rules.transfer_approval && !t.rules_suspended && t.kind != TokenKind::Cash;
    if limited {
        count_sent(state, ctx, id, from, amount);
    }
    if !approved {
        return None;
    }
    let key = (id.clone(), *from, *to, amount);
    let n = *state
        .transfer_approvals
        .get(&key)
        .expect("the check found an approval");
    if n > 1 {
        state.transfer_approvals.insert(key, n - 1);
    } else {
        state.transfer_approvals.remove(&key);
    }
    Some(n)
}

/// Counts a holder transfer of `amount` from `from` against its identity's
/// transfer limit, if the token has one, and drops the days no period
/// reaches any more.
fn count_sent(
    state: &mut State,
    ctx: &BlockContext,
    id: &TokenId,
    from: &WalletAddress,
    amount: Units,
) {
    let t = state.tokens.get(id).expect("the transfer was checked");
    if crate::compliance::limited(state, id, t, from).is_none() {
        return;
    }
    let did = state
        .wallets
        .get(from)
        .expect("the sender is bound")
        .clone();
    let today = crate::compliance::day_number(ctx.date());
    let key = (id.clone(), did.clone(), today);
    let sent = state.sent_by_day.get(&key).copied().unwrap_or(Units::ZERO);
    let sent = sent
        .checked_add(amount)
        .expect("what was sent fits the supply");
    state.sent_by_day.insert(key, sent);
    let oldest = today.saturating_sub(u32::from(LIMIT_DAYS_MAX));
    let stale: Vec<_> = state
        .sent_by_day
        .range((id.clone(), did.clone(), 0)..(id.clone(), did, oldest))
        .map(|(k, _)| k.clone())
        .collect();
    for k in stale {
        state.sent_by_day.remove(&k);
    }
}
