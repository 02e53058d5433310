//! Checking the travel rule: for a transfer on chain whose reference is a
//! travel-rule digest, the regulator asks the sending organisation (the
//! transaction's signer) and the receiving one (the organisation keeping
//! the receiving wallet) for the message, each sealed to the regulator's
//! key, and checks that each is the message the digest names and that it
//! describes exactly the transfer the chain carried. The result, side by
//! side, is kept and on the audit log; the messages go to the vault.

use crate::Regulator;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tranche_api::travel::{SealedTravelRule, TravelRuleMessage};
use tranche_service::audit::{self, Entry};
use tranche_service::auth::Principal;
use tranche_service::signed::SignedClient;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{Hash, Outcome, TransferRecord};

/// `POST /travel-rule/checks`: which transfer.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TravelCheckRequest {
    /// The transaction's hash.
    pub tx: String,
}

/// What one side answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TravelSide {
    /// `originator` (the transaction's signer) or `beneficiary` (the
    /// organisation keeping the receiving wallet).
    pub side: String,
    /// The organisation.
    pub org: String,
    /// `bound` (its message is the one the chain's digest names, and
    /// describes this transfer), `mismatch`, `missing` (it holds none),
    /// `refused`, `unreachable`, or `no_address` (this service has none for
    /// it).
    pub result: String,
    /// What was seen.
    pub detail: String,
}

/// A travel-rule check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TravelCheckView {
    /// Its number.
    pub id: u64,
    /// The transaction.
    pub tx: String,
    /// Its block.
    pub height: u64,
    /// The digest the transfer carries.
    pub digest: String,
    /// `bound` when every side is, else `findings`.
    pub verdict: String,
    /// Each side's answer.
    pub sides: Vec<TravelSide>,
    /// When, ms since 1970.
    pub at_ms: u64,
}

fn bad(m: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::BadRequest, m)
}

/// How `m` differs from the transfer `t` the chain carried, if it does.
fn differs(m: &TravelRuleMessage, t: &TransferRecord) -> Option<String> {
    let chain = (
        t.token.to_string(),
        t.from.map(|w| w.to_string()).unwrap_or_default(),
        t.to.to_string(),
        t.amount,
    );
    let said = (
        m.transfer.token.clone(),
        m.transfer.from.clone(),
        m.transfer.to.clone(),
        m.transfer.amount,
    );
    (chain != said).then(|| {
        format!(
            "the message describes {} {} from {} to {}; the chain moved {} {} from {} to {}",
            said.3, said.0, said.1, said.2, chain.3, chain.0, chain.1, chain.2
        )
    })
}

impl Regulator {
    /// Asks both sides of transfer `tx` for its travel-rule message and
    /// checks each against the chain (staff).
    pub async fn check_travel_rule(
        &self,
        who: &Principal,
        req: TravelCheckRequest,
    ) -> Result<TravelCheckView, ServiceError> {
        Regulator::require_reader(who)?;
        let s = &self.service;
        let hash = Hash::from_hex(&req.tx)
            .map_err(|_| bad("tx is a transaction's hash, 64 hex digits"))?;
        let record = s
            .node
            .transaction(&hash)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| {
                ServiceError::new(
                    ServiceCode::NotFound,
                    format!("no transaction {} is final on chain", req.tx),
                )
            })?;
        if !matches!(record.receipt.outcome, Outcome::Applied) {
            return Err(bad("the chain rejected that transaction: it moved nothing"));
        }
        let block = s
            .node
            .block(record.height)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| ServiceError::internal("a final transaction's block", record.height))?;
        let transfer = block
            .transfers
            .iter()
            .find(|t| t.tx == hash)
            .cloned()
            .ok_or_else(|| bad("that transaction moved no units"))?;
        let digest = transfer
            .reference
            .as_ref()
            .map(|r| r.to_string())
            .filter(|r| r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                bad("that transfer's reference is no travel-rule digest: the travel rule was not applied to it")
            })?;
        let signer = block
            .block
            .txs
            .get(record.index as usize)
            .map(|stx| stx.tx.signer)
            .ok_or_else(|| {
                ServiceError::internal("a transaction's place in its block", record.index)
            })?;
        let mut sides = Vec::new();
        let mut conn = s.db.pool().acquire().await?;
        if let Some((org, _)) = self.org_of(&mut conn, &signer).await? {
            sides.push(("originator", org));
        }
        let bound: Option<(Option<String>,)> =
            sqlx::query_as("SELECT exchange FROM rg_wallets WHERE wallet = $1")
                .bind(transfer.to.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        drop(conn);
        let keeper = match bound.and_then(|(e,)| e) {
            Some(exchange) => Some(exchange),
            None => s
                .node
                .wallet(&transfer.to)
                .await
                .map_err(ServiceError::unavailable)?
                .data
                .custody
                .map(|c| c.custodian.to_string()),
        };
        match keeper {
            Some(org) => sides.push(("beneficiary", org)),
            None => {
                return Err(bad(format!(
                    "no organisation keeps {}: the travel rule does not apply to it",
                    transfer.to
                )))
            }
        }
        let client = SignedClient::new(Arc::clone(&s.key), s.chain_id.clone(), &s.config.org);
        let mut answers = Vec::new();
        let mut messages = Vec::new();
        for (side, org) in sides {
            let (result, detail) = match s.config.peers.get(&org) {
                None => (
                    "no_address",
                    format!("add \"{org}\" = \"https://…\" under [service.peers]"),
                ),
                Some(base) => {
                    match self
                        .ask_travel_rule(&client, base, &digest, &transfer)
                        .await
                    {
                        Ok((m, None)) => {
                            messages.push(m);
                            (
                                "bound",
                                format!("{org}'s message is the one the chain names"),
                            )
                        }
                        Ok((m, Some(d))) => {
                            messages.push(m);
                            ("mismatch", d)
                        }
                        Err((r, d)) => (r, d),
                    }
                }
            };
            answers.push(TravelSide {
                side: side.into(),
                org,
                result: result.into(),
                detail,
            });
        }
        let verdict = if answers.iter().all(|a| a.result == "bound") {
            "bound"
        } else {
            "findings"
        };
        let mut w = s.db.write().await?;
        for m in &messages {
            s.keep_travel_rule(&mut w.tx, m).await?;
        }
        let (id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM rg_travel_checks")
            .fetch_one(&mut *w.tx)
            .await?;
        let at = now_ms();
        let sides_json = serde_json::to_string(&answers).expect("sides serialize");
        sqlx::query(
            "INSERT INTO rg_travel_checks (id, tx, height, digest, verdict, sides, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(req.tx.clone())
        .bind(record.height as i64)
        .bind(digest.clone())
        .bind(verdict)
        .bind(sides_json)
        .bind(at as i64)
        .execute(&mut *w.tx)
        .await?;
        let summary: Vec<String> = answers
            .iter()
            .map(|a| format!("{} {}: {}", a.side, a.org, a.result))
            .collect();
        audit::append(
            &mut w.tx,
            at,
            Entry {
                tx: Some(req.tx.clone()),
                ..Entry::by_person(
                    who,
                    Regulator::reader_role(who),
                    "travel_rule_check",
                    format!("travel-rule/{digest}"),
                    format!("{verdict}: {}", summary.join("; ")),
                )
            },
        )
        .await?;
        w.commit().await?;
        Ok(TravelCheckView {
            id: id as u64,
            tx: req.tx,
            height: record.height,
            digest,
            verdict: verdict.into(),
            sides: answers,
            at_ms: at,
        })
    }

    /// One side's message for `digest`, opened, with how it differs from
    /// `t`; or the side's result and why.
    async fn ask_travel_rule(
        &self,
        client: &SignedClient,
        base: &str,
        digest: &str,
        t: &TransferRecord,
    ) -> Result<(TravelRuleMessage, Option<String>), (&'static str, String)> {
        let answered = client
            .send(
                reqwest::Method::GET,
                base,
                &format!("/travel-rule/{digest}"),
                Vec::new(),
            )
            .await
            .map_err(|e| ("unreachable", e.to_string()))?;
        let status = answered.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(("missing", "it holds no message with this digest".into()));
        }
        if !status.is_success() {
            let body: serde_json::Value = answered.json().await.unwrap_or_default();
            return Err((
                "refused",
                format!("{status}: {}", body["message"].as_str().unwrap_or("")),
            ));
        }
        let sealed: SealedTravelRule = answered
            .json()
            .await
            .map_err(|e| ("mismatch", format!("not a sealed message: {e}")))?;
        if sealed.digest != digest {
            return Err((
                "mismatch",
                format!("it answered the message {} instead", sealed.digest),
            ));
        }
        let m = self
            .service
            .open_travel_rule(&sealed)
            .map_err(|e| ("mismatch", e.message))?;
        let d = differs(&m, t);
        Ok((m, d))
    }

    /// Travel-rule checks, newest first.
    pub async fn travel_checks(&self) -> Result<Vec<TravelCheckView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<(i64, String, i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT id, tx, height, digest, verdict, sides, at_ms FROM rg_travel_checks
             ORDER BY id DESC LIMIT 1000",
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TravelCheckView {
                    id: r.0 as u64,
                    tx: r.1,
                    height: r.2 as u64,
                    digest: r.3,
                    verdict: r.4,
                    sides: serde_json::from_str(&r.5)
                        .map_err(|e| ServiceError::internal("a check's sides", e))?,
                    at_ms: r.6 as u64,
                })
            })
            .collect()
    }
}
