//! The travel rule, sending side: an instruction moving at least the AML
//! policy's travel-rule value of a token to a wallet this custodian does
//! not keep carries who sends and who receives. The holder's authorization
//! names the message by its digest (its on-chain reference), so the
//! custodian can only send the message the holder signed for; the message
//! goes sealed to the receiving organisation's key before the transfer is
//! sent, and is kept in the vault for a regulator that asks.

use crate::holders::HolderView;
use crate::instructions::Refusal;
use crate::Custodian;
use std::sync::Arc;
use tranche_api::travel::{TravelRuleMessage, TravelRuleParties, TravelTransfer};
use tranche_service::signed::SignedClient;
use tranche_service::ServiceError;
use tranche_types::CustodialTransfer;

/// Where an organisation's service takes travel-rule messages.
pub const TRAVEL_RULE_PATH: &str = "/travel-rule";

impl Custodian {
    /// For an instruction the policy passed: the travel-rule message the
    /// receiving organisation took, to keep with the instruction; nothing
    /// if the rule does not apply; or why the instruction is refused.
    pub(crate) async fn travel_rule(
        &self,
        h: &HolderView,
        p: &CustodialTransfer,
        parties: Option<&TravelRuleParties>,
    ) -> Result<Result<Option<TravelRuleMessage>, Refusal>, ServiceError> {
        let s = &self.service;
        let threshold = s
            .aml
            .get(&s.node)
            .await?
            .and_then(|v| {
                v.policy
                    .limits
                    .iter()
                    .find(|l| l.asset == p.token)
                    .map(|l| l.travel_rule_value)
            })
            .filter(|v| !v.is_zero());
        let mut conn = s.db.pool().acquire().await?;
        let (ours,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cus_holders WHERE wallet = $1")
            .bind(p.to.to_string())
            .fetch_one(&mut *conn)
            .await?;
        drop(conn);
        let required = ours == 0 && threshold.is_some_and(|t| p.amount >= t);
        let Some(parties) = parties else {
            if required {
                return Ok(Err((
                    "travel_rule_required",
                    format!(
                        "moving {} {} or more to a wallet kept elsewhere carries the travel rule: sign the authorization with --travel-rule FILE (who sends, who receives, and the organisation keeping {})",
                        threshold.map_or(0, |t| t.0),
                        p.token,
                        p.to
                    ),
                )));
            }
            return Ok(Ok(None));
        };
        let message = match TravelRuleMessage::new(
            s.chain_id.as_str(),
            &s.config.org,
            parties,
            TravelTransfer {
                token: p.token.to_string(),
                from: h.wallet.clone(),
                to: p.to.to_string(),
                amount: p.amount,
                authorization: p.authorization.number,
            },
        ) {
            Ok(m) => m,
            Err(why) => return Ok(Err(("travel_rule_invalid", why))),
        };
        let digest = message.digest().to_hex();
        if p.reference.as_ref().map(|r| r.as_str()) != Some(digest.as_str()) {
            return Ok(Err((
                "travel_rule_unbound",
                format!(
                    "the authorization's reference must be the travel-rule message's digest, {digest}: sign it with --travel-rule FILE"
                ),
            )));
        }
        let vasp = &parties.beneficiary_vasp;
        let Some(base) = s.config.peers.get(vasp) else {
            return Ok(Err((
                "beneficiary_vasp_unknown",
                format!("this custodian has no address for {vasp}'s service"),
            )));
        };
        let sealed = s.seal_travel_rule(vasp, &message).await?;
        let client = SignedClient::new(Arc::clone(&s.key), s.chain_id.clone(), &s.config.org);
        let answered = client
            .send(
                reqwest::Method::POST,
                base,
                TRAVEL_RULE_PATH,
                serde_json::to_vec(&sealed).expect("a sealed message serializes"),
            )
            .await
            .map_err(|e| ServiceError::unavailable(format!("{vasp}'s service: {e}")))?;
        let status = answered.status();
        if status.is_success() {
            tracing::info!(vasp = %vasp, digest, "travel-rule message taken");
            return Ok(Ok(Some(message)));
        }
        let body: serde_json::Value = answered.json().await.unwrap_or_default();
        let said = body["message"].as_str().unwrap_or("").to_string();
        if status.is_client_error() {
            return Ok(Err((
                "beneficiary_vasp_refused",
                format!("{vasp} refused the travel-rule message ({status}): {said}"),
            )));
        }
        Err(ServiceError::unavailable(format!(
            "{vasp}'s service answered {status}: {said}; hand the instruction in again"
        )))
    }
}
