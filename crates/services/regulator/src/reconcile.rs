//! Reconciliation (F6-9, REC-2): each report, once the follower has seen
//! the blocks it covers, against every transfer on chain touching its
//! exchange's wallets in those blocks (and any blocks a missing report
//! left uncovered), in one database transaction with its findings, the
//! monitoring rules' alerts and their audit entries; a crash at any point
//! leaves the report to be reconciled again, with the same outcome.
//! Issued and revoked amounts of the tokens traded are read from the
//! chain and kept with the reconciliation.

use crate::follow::bound_wallets;
use crate::intake::{finding, About};
use crate::monitor::monitor;
use crate::packed::unpack_moves;
use crate::Regulator;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::Row as _;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use tranche_api::report::{
    reconcile, ChainTransfer, ExchangeReport, Reconciliation, SignedReconciliation, SignedReport,
    TransferKey, WalletBinding,
};
use tranche_service::audit::{self, Entry};
use tranche_service::db::params;
use tranche_service::{now_ms, ServiceCode, ServiceError};

/// A report as the regulator holds it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportView {
    /// The exchange.
    pub exchange: String,
    /// Its number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// The blocks it covers: after ...
    pub after_height: u64,
    /// ... through.
    pub through_height: u64,
    /// Trades in it.
    pub trades: u64,
    /// Transfers in it.
    pub transfers: u64,
    /// `received` or `reconciled`.
    pub state: String,
    /// When it arrived, ms since 1970.
    pub received_ms: u64,
}

/// One reconciliation's outcome.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReconciliationView {
    /// The exchange.
    pub exchange: String,
    /// The report.
    pub seq: u64,
    /// The blocks reconciled: after ...
    pub after_height: u64,
    /// ... through.
    pub through_height: u64,
    /// Transfers on chain touching the exchange's wallets in them.
    pub on_chain: u64,
    /// Transfers the report holds.
    pub reported: u64,
    /// Those that agree.
    pub matched: u64,
    /// Findings raised.
    pub findings: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// `clean` when nothing was found.
    pub verdict: String,
    /// Each token traded: issued and revoked, as the chain says.
    #[schema(value_type = Object)]
    pub supply: serde_json::Value,
}

/// A finding, with its evidence.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FindingView {
    /// Its number.
    pub id: u64,
    /// The exchange.
    pub exchange: String,
    /// The report concerned.
    pub seq: u64,
    /// `missing`, `extra`, `altered`, `repeated` (transfers), or
    /// `missing`, `edited`, `repeated` (reports).
    pub kind: String,
    /// What it is about: a transaction and leg, or a report.
    pub subject: String,
    /// In words.
    pub detail: String,
    /// The report's number, hash and signature, the chain's block height,
    /// transaction hash and amounts, the report's entry.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

/// An alert, with its evidence.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertView {
    /// Its number.
    pub id: u64,
    /// The rule.
    pub rule: String,
    /// The exchange.
    pub exchange: String,
    /// The report whose trades raised it.
    pub seq: u64,
    /// A trade or an identity.
    pub subject: String,
    /// In words.
    pub detail: String,
    /// The trades concerned, as reported, and the report's hash.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

type ReportRow = (String, i64, String, i64, i64, i64, i64, String, i64);

/// The movements on chain touching `exchange`'s wallets in blocks
/// `(from, through]`, and the entries of `report` found in blocks an
/// earlier report covered (at or below `from`): what reconciling a report
/// compares.
async fn inputs(
    conn: &mut AnyConnection,
    exchange: &str,
    (from, through): (u64, u64),
    report: &ExchangeReport,
) -> Result<(Vec<ChainTransfer>, HashSet<TransferKey>), ServiceError> {
    let rows: Vec<(i64, String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT height, moves, packed FROM rg_blocks
         WHERE exchange = $1 AND height > $2 AND height <= $3 ORDER BY height",
    )
    .bind(exchange.to_string())
    .bind(from as i64)
    .bind(through as i64)
    .fetch_all(&mut *conn)
    .await?;
    let mut chain = Vec::new();
    for (height, moves, packed) in rows {
        chain.extend(unpack_moves(height as u64, packed.as_deref(), &moves)?);
    }
    // Entries naming blocks an earlier report covered.
    let earlier: BTreeSet<u64> = report
        .transfers
        .iter()
        .map(|t| t.height)
        .filter(|h| *h <= from)
        .collect();
    let earlier: Vec<u64> = earlier.into_iter().collect();
    let mut before = HashSet::new();
    for chunk in earlier.chunks(200) {
        let mut q =
            sqlx::query_as::<_, (i64, String, Option<Vec<u8>>)>(sqlx::AssertSqlSafe(format!(
            "SELECT height, moves, packed FROM rg_blocks WHERE exchange = {} AND height IN ({})",
            params(conn, 1, 1),
            params(conn, 2, chunk.len())
        )))
            .bind(exchange.to_string());
        for h in chunk {
            q = q.bind(*h as i64);
        }
        for (height, moves, packed) in q.fetch_all(&mut *conn).await? {
            before.extend(
                unpack_moves(height as u64, packed.as_deref(), &moves)?
                    .into_iter()
                    .map(|c| TransferKey {
                        tx: c.tx,
                        token: c.token,
                        from_wallet: c.from_wallet.unwrap_or_default(),
                        to_wallet: c.to_wallet,
                    }),
            );
        }
    }
    Ok((chain, before))
}

/// A large value (a report, a million movements) freed on a blocking
/// thread when it goes out of scope, not on the async worker in the middle
/// of the service's work: freeing millions of strings takes milliseconds.
struct DropAside<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> DropAside<T> {
    fn new(value: T) -> DropAside<T> {
        DropAside(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for DropAside<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("held until dropped")
    }
}

impl<T: Send + 'static> Drop for DropAside<T> {
    fn drop(&mut self) {
        if let (Some(value), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn_blocking(move || drop(value));
        }
    }
}

/// Where `exchange`'s reconciliation stands: the last block reconciled.
async fn reconciled_through(conn: &mut AnyConnection, exchange: &str) -> Result<u64, ServiceError> {
    let (from,): (i64,) =
        sqlx::query_as("SELECT reconciled_through FROM rg_exchanges WHERE exchange = $1")
            .bind(exchange.to_string())
            .fetch_one(&mut *conn)
            .await?;
    Ok(from as u64)
}

impl Regulator {
    /// Reconciles, in order, every received report whose blocks the
    /// follower has seen. Returns how many.
    pub async fn reconcile_ready(self: &Arc<Self>) -> Result<usize, ServiceError> {
        let ready: Vec<(String, i64, i64)> = {
            let mut conn = self.service.db.pool().acquire().await?;
            let cursor = tranche_service::follower::cursor(&mut conn).await?;
            sqlx::query_as(
                "SELECT exchange, seq, chunks FROM rg_reports
                 WHERE state = 'received' AND through_height <= $1 ORDER BY exchange, seq",
            )
            .bind(cursor as i64)
            .fetch_all(&mut *conn)
            .await?
        };
        // Each report is read from the vault and decoded while the one
        // before is reconciled.
        let load = |(exchange, seq, chunks): &(String, i64, i64)| {
            let this = Arc::clone(self);
            let (exchange, seq, chunks) = (exchange.clone(), *seq as u64, *chunks as usize);
            tokio::spawn(async move { this.stored_report(&exchange, seq, chunks).await })
        };
        let mut next = ready.first().map(load);
        let mut done = 0;
        for (i, (exchange, seq, _)) in ready.iter().enumerate() {
            let Some(loading) = next.take() else { break };
            let signed = loading
                .await
                .map_err(|e| ServiceError::internal("reading a report", e))??;
            next = ready.get(i + 1).map(load);
            match self.reconcile_one(exchange, *seq as u64, signed).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => {
                    if let Some(h) = next {
                        h.abort();
                    }
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    async fn reconcile_one(
        &self,
        exchange: &str,
        seq: u64,
        signed: SignedReport,
    ) -> Result<bool, ServiceError> {
        let s = &self.service;
        let signed = DropAside::new(signed);
        let report = &signed.report;
        // What needs the node, before the write turn.
        let policies = s
            .node
            .aml_policy()
            .await
            .map_err(ServiceError::unavailable)?
            .data;
        let tokens: BTreeSet<&str> = report
            .trades
            .iter()
            .flat_map(|t| {
                std::iter::once(t.token.as_str())
                    .chain(t.quote_on_chain.then_some(t.quote.as_str()))
            })
            .collect();
        let mut supply = serde_json::Map::new();
        for t in tokens {
            if let Some(v) = s.node.token(t).await.map_err(ServiceError::unavailable)? {
                let v = v.data.token;
                supply.insert(
                    t.to_string(),
                    serde_json::json!({ "issued": v.issued, "revoked": v.revoked }),
                );
            }
        }
        // The comparison, before the write turn: the follower, the reports
        // arriving and this run at once. What it reads does not move under
        // it: kept movements of followed blocks are never rewritten, and only
        // this task moves where an exchange's reconciliation stands, which
        // the write turn checks again.
        let from = reconciled_through(&mut *s.db.pool().acquire().await?, exchange).await?;
        let through = report.through_height.max(from);
        let (chain, before) = inputs(
            &mut *s.db.pool().acquire().await?,
            exchange,
            (from, through),
            report,
        )
        .await?;
        let (chain, before) = (DropAside::new(chain), DropAside::new(before));
        let result = reconcile(&chain, &report.transfers, |r| {
            before.contains(&TransferKey::of(r))
        });
        let mut w = s.db.write().await?;
        let state: Option<(String,)> =
            sqlx::query_as("SELECT state FROM rg_reports WHERE exchange = $1 AND seq = $2")
                .bind(exchange.to_string())
                .bind(seq as i64)
                .fetch_optional(&mut *w.tx)
                .await?;
        if state.is_none_or(|(st,)| st != "received")
            || reconciled_through(&mut w.tx, exchange).await? != from
        {
            return Ok(false);
        }
        let about = About {
            actor: &s.config.org,
            exchange,
            seq,
        };
        let mut findings = 0u64;
        for m in &result.mismatches {
            let evidence = serde_json::json!({
                "report": { "exchange": exchange, "seq": seq, "hash": signed.hash, "signature": signed.signature },
                "chain": m.chain,
                "reported": m.reported,
            });
            finding(
                &mut w.tx,
                &about,
                (&m.kind, &m.subject(), &m.detail),
                &evidence,
            )
            .await?;
            findings += 1;
        }
        // The monitoring rules over its trades.
        let linked: Vec<(String, String)> = sqlx::query_as("SELECT a, b FROM rg_links")
            .fetch_all(&mut *w.tx)
            .await?;
        let linked: HashSet<(String, String)> = linked
            .into_iter()
            .flat_map(|(a, b)| [(a.clone(), b.clone()), (b, a)])
            .collect();
        let alerts = monitor(
            &report.trades,
            |h| policies.at(h).map(|v| &v.policy),
            &linked,
            &self.section.rules(),
        );
        for a in &alerts {
            let trades: Vec<_> = report
                .trades
                .iter()
                .filter(|t| a.trades.contains(&t.trade))
                .collect();
            let evidence = serde_json::json!({
                "report": { "exchange": exchange, "seq": seq, "hash": signed.hash },
                "trades": trades,
            });
            let (next,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM rg_alerts")
                .fetch_one(&mut *w.tx)
                .await?;
            let new = sqlx::query(
                "INSERT INTO rg_alerts (id, rule, exchange, seq, subject, detail, evidence, at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (rule, exchange, seq, subject) DO NOTHING",
            )
            .bind(next)
            .bind(a.rule.clone())
            .bind(exchange.to_string())
            .bind(seq as i64)
            .bind(a.subject.clone())
            .bind(a.detail.clone())
            .bind(evidence.to_string())
            .bind(now_ms() as i64)
            .execute(&mut *w.tx)
            .await?
            .rows_affected()
                == 1;
            if new {
                audit::append(
                    &mut w.tx,
                    now_ms(),
                    Entry::by_chain(
                        &s.config.org,
                        "alert",
                        format!("alert/{next}"),
                        format!("{} on {}: {}", a.rule, a.subject, a.detail),
                    ),
                )
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO rg_reconciliations (exchange, seq, after_height, through_height, on_chain,
                 reported, matched, findings, alerts, supply, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(exchange.to_string())
        .bind(seq as i64)
        .bind(from as i64)
        .bind(through as i64)
        .bind(chain.len() as i64)
        .bind(report.transfers.len() as i64)
        .bind(result.matched.len() as i64)
        .bind(findings as i64)
        .bind(alerts.len() as i64)
        .bind(serde_json::Value::Object(supply).to_string())
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("UPDATE rg_reports SET state = 'reconciled' WHERE exchange = $1 AND seq = $2")
            .bind(exchange.to_string())
            .bind(seq as i64)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("UPDATE rg_exchanges SET reconciled_through = $1 WHERE exchange = $2")
            .bind(through as i64)
            .bind(exchange.to_string())
            .execute(&mut *w.tx)
            .await?;
        audit::append(
            &mut w.tx,
            now_ms(),
            Entry::by_chain(
                &s.config.org,
                "reconcile",
                format!("report/{exchange}/{seq}"),
                format!(
                    "blocks {}..={through}: {} on chain, {} reported, {} matched, {findings} findings, {} alerts",
                    from + 1,
                    chain.len(),
                    report.transfers.len(),
                    result.matched.len(),
                    alerts.len()
                ),
            ),
        )
        .await?;
        w.commit().await?;
        Ok(true)
    }

    /// Report `seq` of `exchange`'s reconciliation, signed by the regulator,
    /// for anyone with a node to check (`tranche verify`, REC-9): the
    /// exchange's signed report, the movements on chain it was compared
    /// with, every wallet in them with its DID, and what differs.
    pub async fn export(
        &self,
        exchange: &str,
        seq: u64,
    ) -> Result<SignedReconciliation, ServiceError> {
        let s = &self.service;
        let mut conn = s.db.pool().acquire().await?;
        let row: Option<(i64, i64, String, i64)> = sqlx::query_as(
            "SELECT c.after_height, c.through_height, c.supply, r.chunks
             FROM rg_reconciliations c JOIN rg_reports r ON r.exchange = c.exchange AND r.seq = c.seq
             WHERE c.exchange = $1 AND c.seq = $2",
        )
        .bind(exchange.to_string())
        .bind(seq as i64)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((after, through, supply, chunks)) = row else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                format!("report {seq} of {exchange} is not reconciled (yet)"),
            ));
        };
        let (after, through) = (after as u64, through as u64);
        let report = self.stored_report(exchange, seq, chunks as usize).await?;
        let (chain, before) = inputs(&mut conn, exchange, (after, through), &report.report).await?;
        let result = reconcile(&chain, &report.report.transfers, |r| {
            before.contains(&TransferKey::of(r))
        });
        let named: BTreeSet<String> = chain
            .iter()
            .flat_map(|c| c.from_wallet.iter().chain(std::iter::once(&c.to_wallet)))
            .chain(
                report
                    .report
                    .transfers
                    .iter()
                    .flat_map(|t| t.from_wallet.iter().chain(std::iter::once(&t.to_wallet))),
            )
            .cloned()
            .collect();
        let named: Vec<String> = named.into_iter().collect();
        let texts: Vec<&str> = named.iter().map(String::as_str).collect();
        let bound = bound_wallets(&mut conn, &texts).await?;
        let wallets: Vec<WalletBinding> = named
            .iter()
            .map(|w| {
                let b = bound.get(w);
                WalletBinding {
                    wallet: w.clone(),
                    did: b.map(|(d, _)| d.clone()),
                    exchange: b.is_some_and(|(_, e)| e.as_deref() == Some(exchange)),
                }
            })
            .collect();
        // The report's entries on chain in blocks an earlier report covered.
        let mut reported_before: Vec<TransferKey> = report
            .report
            .transfers
            .iter()
            .map(TransferKey::of)
            .filter(|k| before.contains(k))
            .collect();
        reported_before.sort();
        reported_before.dedup();
        let reconciliation = Reconciliation {
            regulator: s.config.org.clone(),
            exchange: exchange.to_string(),
            seq,
            after_height: after,
            through_height: through,
            wallets,
            on_chain: chain,
            report,
            reported_before,
            mismatches: result.mismatches,
            supply: serde_json::from_str(&supply)
                .map_err(|e| ServiceError::internal("a reconciliation's supply", e))?,
        };
        let hash = reconciliation.hash();
        Ok(SignedReconciliation {
            signature: s
                .key
                .sign(tranche_crypto::Domain::Reconciliation, &s.chain_id, &hash.0),
            hash: hash.to_hex(),
            reconciliation,
        })
    }

    /// Reports held, newest first, optionally of one exchange.
    pub async fn reports(&self, exchange: Option<&str>) -> Result<Vec<ReportView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<ReportRow> = sqlx::query_as(
            "SELECT exchange, seq, hash, after_height, through_height, trades, transfers, state, received_ms
             FROM rg_reports WHERE ($1 = '' OR exchange = $1) ORDER BY received_ms DESC, seq DESC LIMIT 1000",
        )
        .bind(exchange.unwrap_or("").to_string())
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReportView {
                exchange: r.0,
                seq: r.1 as u64,
                hash: r.2,
                after_height: r.3 as u64,
                through_height: r.4 as u64,
                trades: r.5 as u64,
                transfers: r.6 as u64,
                state: r.7,
                received_ms: r.8 as u64,
            })
            .collect())
    }

    /// Reconciliations, newest first, optionally of one exchange.
    pub async fn reconciliations(
        &self,
        exchange: Option<&str>,
    ) -> Result<Vec<ReconciliationView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT exchange, seq, after_height, through_height, on_chain, reported, matched,
                    findings, alerts, supply
             FROM rg_reconciliations WHERE ($1 = '' OR exchange = $1)
             ORDER BY at_ms DESC, seq DESC LIMIT 1000",
        )
        .bind(exchange.unwrap_or("").to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let findings = r.try_get::<i64, _>(7)? as u64;
            let alerts = r.try_get::<i64, _>(8)? as u64;
            out.push(ReconciliationView {
                exchange: r.try_get(0)?,
                seq: r.try_get::<i64, _>(1)? as u64,
                after_height: r.try_get::<i64, _>(2)? as u64,
                through_height: r.try_get::<i64, _>(3)? as u64,
                on_chain: r.try_get::<i64, _>(4)? as u64,
                reported: r.try_get::<i64, _>(5)? as u64,
                matched: r.try_get::<i64, _>(6)? as u64,
                findings,
                alerts,
                verdict: if findings == 0 { "clean" } else { "findings" }.into(),
                supply: serde_json::from_str(&r.try_get::<String, _>(9)?)
                    .map_err(|e| ServiceError::internal("a reconciliation's supply", e))?,
            });
        }
        Ok(out)
    }

    /// Findings, oldest first, optionally of one exchange.
    pub async fn findings(&self, exchange: Option<&str>) -> Result<Vec<FindingView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<(i64, String, i64, String, String, String, String)> = sqlx::query_as(
            "SELECT id, exchange, seq, kind, subject, detail, evidence FROM rg_findings
             WHERE ($1 = '' OR exchange = $1) ORDER BY id LIMIT 10000",
        )
        .bind(exchange.unwrap_or("").to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(FindingView {
                    id: r.0 as u64,
                    exchange: r.1,
                    seq: r.2 as u64,
                    kind: r.3,
                    subject: r.4,
                    detail: r.5,
                    evidence: serde_json::from_str(&r.6)
                        .map_err(|e| ServiceError::internal("a finding's evidence", e))?,
                })
            })
            .collect()
    }

    /// Alerts, oldest first, optionally of one exchange.
    pub async fn alerts(&self, exchange: Option<&str>) -> Result<Vec<AlertView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<(i64, String, String, i64, String, String, String)> = sqlx::query_as(
            "SELECT id, rule, exchange, seq, subject, detail, evidence FROM rg_alerts
             WHERE ($1 = '' OR exchange = $1) ORDER BY id LIMIT 10000",
        )
        .bind(exchange.unwrap_or("").to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AlertView {
                    id: r.0 as u64,
                    rule: r.1,
                    exchange: r.2,
                    seq: r.3 as u64,
                    subject: r.4,
                    detail: r.5,
                    evidence: serde_json::from_str(&r.6)
                        .map_err(|e| ServiceError::internal("an alert's evidence", e))?,
                })
            })
            .collect()
    }
}
