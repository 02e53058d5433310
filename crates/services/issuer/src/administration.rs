//! Token administration by the issuer's staff: an operator proposes an
//! agent action on one of the issuer's tokens (new rules, suspended checks,
//! trusted claim issuers, a document, a pre-approved transfer, a pause, a
//! freeze), it waits in the queue for the staff's decisions like any
//! request, the approval that completes the quorum sends it, and the
//! follower records what the chain made of it.

use crate::queue::{self, Kind, RequestView, REASON_LEN_MAX};
use crate::{Issuer, OPERATOR};
use serde::{Deserialize, Serialize};
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{ServiceCode, ServiceError};
use tranche_types::{Payload, RequestId, TokenId, Units};

/// `POST /administration`: an agent action an operator proposes.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// The request's id, chosen by the proposer (letters, digits and the
    /// characters `-_.:`, at most 64): the same proposal again is answered
    /// with where it stands.
    pub id: String,
    /// The ledger payload to send once approved, as `tranche tx build
    /// payload` takes it: `set_token_rules`, `set_rule_checks`,
    /// `set_trusted_issuers`, `set_document`, `remove_document`,
    /// `approve_transfer`, `open_ballot`, `set_paused`, `set_frozen`,
    /// `freeze_partial`, `forced_transfer` or `forced_moves` (its first
    /// move's token names the agent).
    #[schema(value_type = Object)]
    pub payload: Payload,
    /// Why, in a sentence (1 to 500 characters).
    pub reason: String,
}

/// The token an agent action is on, if `p` is one.
fn token_of(p: &Payload) -> Option<&TokenId> {
    Some(match p {
        Payload::SetTokenRules(p) => &p.token,
        Payload::SetRuleChecks(p) => &p.token,
        Payload::SetTrustedIssuers(p) => &p.token,
        Payload::SetDocument(p) => &p.token,
        Payload::RemoveDocument(p) => &p.token,
        Payload::ApproveTransfer(p) => &p.token,
        Payload::SetPaused(p) => &p.token,
        Payload::SetFrozen(p) => &p.token,
        Payload::FreezePartial(p) => &p.token,
        Payload::OpenBallot(p) => &p.token,
        Payload::SetLimitExemption(p) => &p.token,
        Payload::ForcedTransfer(p) => &p.token,
        Payload::ForcedMoves(p) => &p.moves.first()?.token,
        _ => return None,
    })
}

/// Whether `p` is an agent action this service sends for its staff.
pub(crate) fn is_agent_action(p: &Payload) -> bool {
    token_of(p).is_some()
}

/// What an applied agent action did, for the check the follower records.
pub(crate) fn describe(p: &Payload) -> String {
    match p {
        Payload::SetTokenRules(p) => format!("the rules of {} replaced", p.token),
        Payload::SetRuleChecks(p) if p.suspended => {
            format!("the rule checks of {} suspended", p.token)
        }
        Payload::SetRuleChecks(p) => format!("the rule checks of {} resumed", p.token),
        Payload::SetTrustedIssuers(p) => {
            format!(
                "the trusted issuers of {} for topic {} set",
                p.token, p.topic.0
            )
        }
        Payload::SetDocument(p) => format!("document {} of {} set", p.name, p.token),
        Payload::RemoveDocument(p) => format!("document {} of {} removed", p.name, p.token),
        Payload::ApproveTransfer(p) => format!(
            "a transfer of {} {} from {} to {} approved",
            p.amount, p.token, p.from, p.to
        ),
        Payload::SetPaused(p) if p.paused => format!("{} paused", p.token),
        Payload::SetPaused(p) => format!("{} resumed", p.token),
        Payload::SetFrozen(p) if p.frozen => format!("{} frozen for {}", p.wallet, p.token),
        Payload::SetFrozen(p) => format!("{} unfrozen for {}", p.wallet, p.token),
        Payload::FreezePartial(p) => {
            format!("{} of {} frozen in {}", p.amount, p.token, p.wallet)
        }
        Payload::OpenBallot(p) => format!("ballot {} of {} opened", p.ballot, p.token),
        Payload::SetLimitExemption(p) if p.exempt => {
            format!("{} exempted from the limits of {}", p.did, p.token)
        }
        Payload::SetLimitExemption(p) => {
            format!("{}'s exemption from the limits of {} ended", p.did, p.token)
        }
        Payload::ForcedTransfer(p) => format!(
            "{} {} moved by force from {} to {}",
            p.amount, p.token, p.from, p.to
        ),
        Payload::ForcedMoves(p) => format!("{} forced moves made", p.moves.len()),
        _ => "applied".into(),
    }
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::BadRequest, message)
}

impl Issuer {
    /// Queues an operator's proposal for the staff's decisions; the same
    /// proposal again is answered with where it stands.
    pub async fn propose(
        &self,
        who: &Principal,
        proposal: Proposal,
    ) -> Result<RequestView, ServiceError> {
        who.require(OPERATOR)?;
        // Request ids and proposal ids share a character set.
        proposal
            .id
            .parse::<RequestId>()
            .map_err(|e| bad(e.to_string()))?;
        let reason = proposal.reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > REASON_LEN_MAX {
            return Err(bad(format!(
                "give a reason of 1 to {REASON_LEN_MAX} characters"
            )));
        }
        let token = token_of(&proposal.payload).ok_or_else(|| {
            bad("the payload is not an agent action: set_token_rules, set_rule_checks, set_trusted_issuers, set_document, remove_document, approve_transfer, open_ballot, set_paused, set_frozen, freeze_partial, forced_transfer or forced_moves")
        })?;
        let s = &self.service;
        let detail = serde_json::to_string(&proposal.payload).expect("a payload serializes");
        let mut conn = s.db.pool().acquire().await?;
        let known: Option<(String,)> = sqlx::query_as(
            "SELECT detail FROM issuer_requests WHERE kind = 'administration' AND request = $1",
        )
        .bind(proposal.id.clone())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((d,)) = known {
            if d != detail {
                return Err(ServiceError::new(
                    ServiceCode::Conflict,
                    format!(
                        "administration request {} was proposed with another payload; a new proposal takes a new id",
                        proposal.id
                    ),
                ));
            }
            return queue::get(
                &mut conn,
                Kind::Administration,
                &proposal.id,
                self.approvals_required,
            )
            .await?
            .ok_or_else(|| {
                ServiceError::internal("a queued administration request", &proposal.id)
            });
        }
        drop(conn);
        let on_chain = s
            .node
            .token(token.as_str())
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| {
                ServiceError::new(ServiceCode::Refused, format!("no token {token} on chain"))
            })?;
        if on_chain.data.token.issuer.as_str() != s.config.org {
            return Err(ServiceError::new(
                ServiceCode::Refused,
                format!(
                    "{} is not the agent of {token}; its issuer {} is",
                    s.config.org, on_chain.data.token.issuer
                ),
            ));
        }
        let mut w = s.db.write().await?;
        let filed = queue::file(
            &mut w.tx,
            Kind::Administration,
            &proposal.id,
            &s.config.org,
            token.as_str(),
            Units(0),
            detail,
            on_chain.height,
        )
        .await?;
        if filed {
            let e = Entry {
                actor: who.did.clone(),
                authority: who.credential_for(OPERATOR),
                action: "propose".into(),
                subject: format!("administration/{}", proposal.id),
                decision: format!("queued: {}", describe(&proposal.payload)),
                reason: Some(reason),
                tx: None,
            };
            s.decide(&mut w.tx, None, e).await?;
        }
        let out = queue::get(
            &mut w.tx,
            Kind::Administration,
            &proposal.id,
            self.approvals_required,
        )
        .await?
        .ok_or_else(|| ServiceError::internal("a queued administration request", &proposal.id))?;
        w.commit().await?;
        tracing::info!(request = %proposal.id, staff = %who.did, "administration request queued");
        Ok(out)
    }
}
