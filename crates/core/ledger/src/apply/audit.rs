//! Audit anchors (REC-9): an organisation records its audit log's head;
//! the AML regulator publishes its policy (F6-1).

use super::*;
use crate::state::{AmlPolicyVersion, AuditAnchor};

pub(super) fn anchor_audit(
    state: &mut State,
    tx: &Tx<'_>,
    p: &AnchorAudit,
) -> Result<(), Rejection> {
    let org = any_org(state, &tx.stx.tx.signer)?;
    let last = state.audit_anchors.get(&org).map_or(0, |a| a.entries);
    if p.entries <= last {
        return Err(reject(
            RejectCode::AuditAnchorNotAfter,
            format!(
                "{org}'s audit log was anchored at {last} entries; this anchor covers {}",
                p.entries
            ),
        ));
    }
    state.audit_anchors.insert(
        org,
        AuditAnchor {
            entries: p.entries,
            head: p.head,
            height: tx.ctx.height,
        },
    );
    Ok(())
}

pub(super) fn publish_aml_policy(
    state: &mut State,
    tx: &Tx<'_>,
    p: &PublishAmlPolicy,
) -> Result<(), Rejection> {
    let org = org_with(state, &tx.stx.tx.signer, Role::Regulator)?;
    let last = state.aml_policies.keys().next_back().copied().unwrap_or(0);
    if Some(p.version) != last.checked_add(1) {
        return Err(reject(
            RejectCode::AmlPolicyOutOfOrder,
            format!(
                "the last AML policy published is version {last}; this one must be version {}",
                u64::from(last) + 1
            ),
        ));
    }
    if p.effective_height <= tx.ctx.height {
        return Err(reject(
            RejectCode::AmlPolicyOutOfOrder,
            format!(
                "a policy published in block {} takes effect at a later height, not {}",
                tx.ctx.height, p.effective_height
            ),
        ));
    }
    if p.policy.report_period_secs == 0 {
        return Err(reject(
            RejectCode::InvalidField,
            "the reporting period is at least one second",
        ));
    }
    state.aml_policies.insert(
        p.version,
        AmlPolicyVersion {
            regulator: org,
            effective_height: p.effective_height,
            published_height: tx.ctx.height,
            policy: p.policy.clone(),
        },
    );
    Ok(())
}
