//! Alerts become freeze requests: an operator asks the issuer of a token an
//! alert concerns to freeze a wallet of an identity in the alert. The
//! request is recorded with the decision in one database transaction, then
//! delivered to the issuer's service by a request signed with the
//! regulator's on-chain key, retried until the issuer answers; the issuer's
//! staff decide it; the follower sees the freeze on chain and records it
//! with its block and transaction. Each step is on the audit log.

use crate::Regulator;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tranche_api::freeze::{FreezeRequest, FREEZE_REASON_MAX};
use tranche_service::audit::{self, Entry};
use tranche_service::auth::Principal;
use tranche_service::signed::SignedClient;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::Hash;

/// The label of an alert's evidence hash.
pub const EVIDENCE_HASH_DOMAIN: &[u8] = b"tranche/alert-evidence";
/// Where an issuer's service takes freeze requests.
pub const FREEZE_REQUESTS_PATH: &str = "/freeze-requests";

/// `POST /alerts/{id}/freeze`: which wallet, of which token, and why.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeOrder {
    /// A token the alert's trades are in.
    pub token: String,
    /// A wallet of the alert's trades, or bound to an identity in them.
    pub wallet: String,
    /// Why, for the issuer's staff (no personal data; 1 to 500 characters).
    pub reason: String,
}

/// A freeze request and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FreezeView {
    /// Its number.
    pub id: u64,
    /// The id the issuer knows it by: `{regulator}:{id}`.
    pub request: String,
    /// The alert it comes from.
    pub alert: u64,
    /// The token.
    pub token: String,
    /// The wallet.
    pub wallet: String,
    /// The token's issuer, asked to freeze.
    pub issuer: String,
    /// The reason given.
    pub reason: String,
    /// `requested` (not yet taken by the issuer's service), `delivered`
    /// (in the issuer's queue), `refused` (the issuer's service or staff
    /// said no: see `answer`), `executed` (frozen on chain).
    pub state: String,
    /// What the issuer answered, when it refused.
    pub answer: Option<String>,
    /// When it was asked, ms since 1970.
    pub requested_ms: u64,
    /// The block that froze the wallet.
    pub executed_height: Option<u64>,
    /// The transaction that froze it.
    pub executed_tx: Option<String>,
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
);

/// A freeze to deliver or ask after: id, state, token, wallet, issuer,
/// reason, alert, evidence hash.
type DueRow = (i64, String, String, String, String, String, String, String);

const COLUMNS: &str = "id, alert, token, wallet, issuer, reason, state, answer, requested_ms, executed_height, executed_tx";

fn bad(m: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::BadRequest, m)
}

impl Regulator {
    fn freeze_view(&self, r: Row) -> FreezeView {
        FreezeView {
            id: r.0 as u64,
            request: format!("{}:{}", self.service.config.org, r.0),
            alert: r.1 as u64,
            token: r.2,
            wallet: r.3,
            issuer: r.4,
            reason: r.5,
            state: r.6,
            answer: r.7,
            requested_ms: r.8 as u64,
            executed_height: r.9.map(|h| h as u64),
            executed_tx: r.10,
        }
    }

    /// Freeze requests, oldest first.
    pub async fn freezes(&self) -> Result<Vec<FreezeView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rg_freezes ORDER BY id LIMIT 10000"
        )))
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.into_iter().map(|r| self.freeze_view(r)).collect())
    }

    /// Asks the issuer of `order.token` to freeze `order.wallet`, on the
    /// strength of alert `alert` (operators). The same wallet and token
    /// while a request for them is open: that request.
    pub async fn request_freeze(
        &self,
        who: &Principal,
        alert: u64,
        order: FreezeOrder,
    ) -> Result<FreezeView, ServiceError> {
        who.require(crate::OPERATOR)?;
        let reason = order.reason.trim().to_string();
        if reason.is_empty()
            || reason.chars().count() > FREEZE_REASON_MAX
            || reason.chars().any(char::is_control)
        {
            return Err(bad(format!(
                "reason is 1 to {FREEZE_REASON_MAX} characters of printable text"
            )));
        }
        let s = &self.service;
        let mut conn = s.db.pool().acquire().await?;
        let evidence: Option<(String, String, String)> =
            sqlx::query_as("SELECT rule, subject, evidence FROM rg_alerts WHERE id = $1")
                .bind(i64::try_from(alert).unwrap_or(i64::MAX))
                .fetch_optional(&mut *conn)
                .await?;
        let Some((rule, subject, evidence)) = evidence else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                format!("no alert {alert}; see GET /alerts"),
            ));
        };
        // What the alert concerns: its trades' tokens, wallets and
        // identities.
        let parsed: serde_json::Value = serde_json::from_str(&evidence)
            .map_err(|e| ServiceError::internal("an alert's evidence", e))?;
        let mut tokens = BTreeSet::new();
        let mut wallets = BTreeSet::new();
        let mut dids = BTreeSet::new();
        for t in parsed["trades"].as_array().into_iter().flatten() {
            let field = |k: &str| t[k].as_str().map(str::to_string);
            tokens.extend(field("token"));
            wallets.extend(
                field("buyer_wallet")
                    .into_iter()
                    .chain(field("seller_wallet")),
            );
            dids.extend(field("buyer").into_iter().chain(field("seller")));
        }
        if !tokens.contains(&order.token) {
            return Err(bad(format!(
                "alert {alert} concerns {}; ask for a freeze of one of those",
                tokens.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        if !wallets.contains(&order.wallet) {
            let bound: Option<(String,)> =
                sqlx::query_as("SELECT did FROM rg_wallets WHERE wallet = $1")
                    .bind(order.wallet.clone())
                    .fetch_optional(&mut *conn)
                    .await?;
            if !bound.is_some_and(|(d,)| dids.contains(&d)) {
                return Err(bad(format!(
                    "wallet {} is neither in alert {alert}'s trades nor bound to an identity in them",
                    order.wallet
                )));
            }
        }
        drop(conn);
        let token = s
            .node
            .token(&order.token)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| bad(format!("no token {} on chain", order.token)))?;
        let issuer = token.data.token.issuer.to_string();
        if !s.config.peers.contains_key(&issuer) {
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!(
                    "this service has no address for {issuer}'s service: add \"{issuer}\" = \"https://…\" under [service.peers] and restart"
                ),
            ));
        }
        let mut w = s.db.write().await?;
        let open: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rg_freezes WHERE token = $1 AND wallet = $2
                 AND state IN ('requested', 'delivered')"
        )))
        .bind(order.token.clone())
        .bind(order.wallet.clone())
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(r) = open {
            return Ok(self.freeze_view(r));
        }
        let (id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM rg_freezes")
            .fetch_one(&mut *w.tx)
            .await?;
        let hash = Hash::digest(EVIDENCE_HASH_DOMAIN, evidence.as_bytes()).to_hex();
        let now = now_ms() as i64;
        sqlx::query(
            "INSERT INTO rg_freezes (id, alert, alert_text, evidence_hash, token, wallet, issuer,
                 reason, state, requested_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'requested', $9)",
        )
        .bind(id)
        .bind(alert as i64)
        .bind(format!("{rule} on {subject}"))
        .bind(hash)
        .bind(order.token.clone())
        .bind(order.wallet.clone())
        .bind(issuer.clone())
        .bind(reason.clone())
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        audit::append(
            &mut w.tx,
            now_ms(),
            Entry {
                reason: Some(reason),
                ..Entry::by_person(
                    who,
                    crate::OPERATOR,
                    "freeze_request",
                    format!("freeze/{id}"),
                    format!(
                        "asked {issuer} to freeze {} for {} (alert {alert})",
                        order.wallet, order.token
                    ),
                )
            },
        )
        .await?;
        let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rg_freezes WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        self.freeze_due.notify_one();
        tracing::info!(freeze = id, alert, issuer = %issuer, "freeze requested");
        Ok(self.freeze_view(row))
    }

    /// Delivers each requested freeze to its issuer's service and asks
    /// after the delivered ones, on request and every two seconds.
    pub(crate) async fn deliver_freezes_continually(self: Arc<Self>) {
        let client = SignedClient::new(
            Arc::clone(&self.service.key),
            self.service.chain_id.clone(),
            &self.service.config.org,
        );
        loop {
            if let Err(e) = self.deliver_freezes(&client).await {
                tracing::warn!(error = %e.message, "delivering freeze requests");
            }
            tokio::select! {
                _ = self.freeze_due.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    async fn deliver_freezes(&self, client: &SignedClient) -> Result<(), ServiceError> {
        let s = &self.service;
        let mut conn = s.db.pool().acquire().await?;
        let due: Vec<DueRow> = sqlx::query_as(
            "SELECT id, state, token, wallet, issuer, reason, alert_text, evidence_hash
                 FROM rg_freezes WHERE state IN ('requested', 'delivered') ORDER BY id LIMIT 100",
        )
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        for (id, state, token, wallet, issuer, reason, alert, evidence) in due {
            let Some(base) = s.config.peers.get(&issuer) else {
                tracing::warn!(freeze = id, issuer = %issuer, "no address for the issuer's service under [service.peers]");
                continue;
            };
            let request = format!("{}:{id}", s.config.org);
            let answered = if state == "requested" {
                let body = FreezeRequest {
                    id: request.clone(),
                    token,
                    wallet,
                    alert,
                    reason,
                    evidence,
                };
                client
                    .send(
                        reqwest::Method::POST,
                        base,
                        FREEZE_REQUESTS_PATH,
                        serde_json::to_vec(&body).expect("a freeze request serializes"),
                    )
                    .await
            } else {
                client
                    .send(
                        reqwest::Method::GET,
                        base,
                        &format!("/requests/freeze/{request}"),
                        Vec::new(),
                    )
                    .await
            };
            let answered = match answered {
                Ok(a) => a,
                Err(e) => {
                    // Unreachable now; the next round tries again.
                    tracing::warn!(freeze = id, issuer = %issuer, error = %e, "the issuer's service");
                    continue;
                }
            };
            let status = answered.status();
            let body: serde_json::Value = answered.json().await.unwrap_or_default();
            let next = if status.is_success() {
                match body["state"].as_str() {
                    Some("refused") => Some((
                        "refused",
                        body["decisions"]
                            .as_array()
                            .and_then(|d| d.last())
                            .and_then(|d| d["reason"].as_str())
                            .map(|r| format!("refused by the issuer's staff: {r}")),
                    )),
                    Some("failed") => Some((
                        "refused",
                        Some(format!(
                            "the chain rejected the issuer's freeze: {}",
                            body["outcome"].as_str().unwrap_or("?")
                        )),
                    )),
                    _ if state == "requested" => Some(("delivered", None)),
                    _ => None,
                }
            } else if status.is_client_error() && state == "requested" {
                // The issuer's service will not take it: the same request
                // would get the same answer.
                Some((
                    "refused",
                    Some(format!(
                        "the issuer's service answered {status}: {}",
                        body["message"].as_str().unwrap_or("")
                    )),
                ))
            } else {
                None
            };
            let Some((next, answer)) = next else {
                continue;
            };
            let mut w = s.db.write().await?;
            let moved = sqlx::query(
                "UPDATE rg_freezes SET state = $1, answer = $2 WHERE id = $3 AND state = $4",
            )
            .bind(next)
            .bind(answer.clone())
            .bind(id)
            .bind(state.clone())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            if moved == 1 {
                audit::append(
                    &mut w.tx,
                    now_ms(),
                    Entry {
                        reason: answer,
                        ..Entry::by_chain(
                            &issuer,
                            "freeze_answer",
                            format!("freeze/{id}"),
                            next.into(),
                        )
                    },
                )
                .await?;
            }
            w.commit().await?;
        }
        Ok(())
    }

    /// The follower's part: a freeze of `wallet` for `token` applied on
    /// chain executes the open requests for them.
    pub(crate) async fn freeze_seen(
        &self,
        conn: &mut sqlx::AnyConnection,
        token: &str,
        wallet: &str,
        (height, tx): (u64, &str),
    ) -> Result<(), ServiceError> {
        let open: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, issuer FROM rg_freezes WHERE token = $1 AND wallet = $2
                 AND state IN ('requested', 'delivered')",
        )
        .bind(token.to_string())
        .bind(wallet.to_string())
        .fetch_all(&mut *conn)
        .await?;
        for (id, issuer) in open {
            sqlx::query(
                "UPDATE rg_freezes SET state = 'executed', executed_height = $1, executed_tx = $2
                 WHERE id = $3",
            )
            .bind(height as i64)
            .bind(tx.to_string())
            .bind(id)
            .execute(&mut *conn)
            .await?;
            audit::append(
                conn,
                now_ms(),
                Entry {
                    tx: Some(tx.to_string()),
                    ..Entry::by_chain(
                        &issuer,
                        "freeze_executed",
                        format!("freeze/{id}"),
                        format!("{wallet} frozen for {token} in block {height}"),
                    )
                },
            )
            .await?;
        }
        Ok(())
    }
}
