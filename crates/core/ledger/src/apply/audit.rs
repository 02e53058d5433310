//! Audit anchors (REC-9): an organisation records its audit log's head.

use super::*;
use crate::state::AuditAnchor;

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
