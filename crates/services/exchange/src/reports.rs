//! Reports to the AML regulator (F6-6, F6-8): each period, the trades the
//! chain decided since the last report (the trade ledger) and the
//! transfers their settlements made, with both sides' DIDs and wallets;
//! numbered, chained by hash and signed by the exchange's on-chain key
//! (domain `exchange-report`). Each trade is in exactly one report: it is
//! marked with the report's number in the report's own transaction. Served
//! to organisations the chain records as regulators, and POSTed, signed,
//! to `report_url` when configured.

use crate::Exchange;
use sqlx::Row as _;
use std::sync::Arc;
use std::time::Duration;
use tranche_api::report::{ExchangeReport, ReportedTrade, ReportedTransfer, SignedReport};
use tranche_api::report_binary::REPORT_MEDIA_TYPE;
use tranche_service::audit::{self, Entry};
use tranche_service::signed::SignedClient;
use tranche_service::{now_ms, ServiceError};
use tranche_types::{Hash, Units};

/// The most trades one report carries; more wait for the next.
pub const REPORT_TRADES_MAX: i64 = 10_000;
/// Most reports one page lists.
pub const REPORTS_PAGE_MAX: u32 = 100;

fn units(s: &str) -> Result<Units, ServiceError> {
    s.parse()
        .map(Units)
        .map_err(|_| ServiceError::internal("a trade's amount", s))
}

impl Exchange {
    /// Closes the period now: the next report, of every trade the chain
    /// decided that no report holds yet, signed and stored.
    pub async fn close_report(&self) -> Result<SignedReport, ServiceError> {
        let s = &self.service;
        let now = now_ms();
        let mut w = s.db.write().await?;
        let last: Option<(i64, i64, String, i64)> = sqlx::query_as(
            "SELECT seq, to_ms, hash, through_height FROM ex_reports ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *w.tx)
        .await?;
        let (seq, from_ms, prev, after_height) = match last {
            Some((seq, to, hash, through)) => (seq as u64 + 1, to as u64, hash, through as u64),
            None => (1, 0, Hash([0; 32]).to_hex(), 0),
        };
        // Every block the exchange applied, unless that is more trades
        // than a report carries: then whole blocks up to the limit (one
        // block's trades are never split).
        let mut through_height = tranche_service::follower::cursor(&mut w.tx).await?;
        let cut: Option<(i64,)> = sqlx::query_as(
            "SELECT height FROM ex_trades WHERE report_seq IS NULL AND state IN ('settled', 'failed')
             ORDER BY height, id LIMIT 1 OFFSET $1",
        )
        .bind(REPORT_TRADES_MAX)
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some((h,)) = cut {
            let h = h as u64;
            through_height = if h.saturating_sub(1) > after_height {
                h - 1
            } else {
                h
            };
        }
        let through_height = through_height.max(after_height);
        let rows = sqlx::query(
            "SELECT t.id, t.at_ms, t.token, t.quote, t.price, t.quantity, t.value, t.buyer, b.wallet,
                    t.seller, se.wallet, t.fee_buyer, t.fee_seller, t.state, t.tx, t.height
             FROM ex_trades t JOIN ex_traders b ON b.did = t.buyer JOIN ex_traders se ON se.did = t.seller
             WHERE t.report_seq IS NULL AND t.state IN ('settled', 'failed') AND t.height <= $1
             ORDER BY t.id",
        )
        .bind(through_height as i64)
        .fetch_all(&mut *w.tx)
        .await?;
        let mut trades = Vec::with_capacity(rows.len());
        let mut transfers = Vec::new();
        for r in &rows {
            let quote: crate::Asset = serde_json::from_str(&r.try_get::<String, _>(3)?)
                .map_err(|e| ServiceError::internal("a trade's quote", e))?;
            let t = ReportedTrade {
                trade: r.try_get::<i64, _>(0)? as u64,
                matched_ms: r.try_get::<i64, _>(1)? as u64,
                token: r.try_get(2)?,
                quote: quote.to_string(),
                quote_on_chain: matches!(quote, crate::Asset::Token(_)),
                price: r.try_get::<i64, _>(4)? as u64,
                quantity: r.try_get::<i64, _>(5)? as u64,
                value: units(&r.try_get::<String, _>(6)?)?,
                buyer: r.try_get(7)?,
                buyer_wallet: r.try_get(8)?,
                seller: r.try_get(9)?,
                seller_wallet: r.try_get(10)?,
                fee_buyer: units(&r.try_get::<String, _>(11)?)?,
                fee_seller: units(&r.try_get::<String, _>(12)?)?,
                state: r.try_get(13)?,
                tx: r.try_get(14)?,
                height: r.try_get::<Option<i64>, _>(15)?.unwrap_or(0) as u64,
            };
            trades.push(t);
        }
        // Every movement touching a trader's wallet in the blocks covered;
        // a settlement leg names its trade.
        let moves = sqlx::query(
            "SELECT m.tx, m.token, m.from_wallet, m.from_did, m.to_wallet, m.to_did, m.amount,
                    m.kind, m.height, t.id
             FROM ex_moves m LEFT JOIN ex_trades t ON t.tx = m.tx AND m.kind = 'settlement'
             WHERE m.height > $1 AND m.height <= $2 ORDER BY m.height, m.idx",
        )
        .bind(after_height as i64)
        .bind(through_height as i64)
        .fetch_all(&mut *w.tx)
        .await?;
        for r in &moves {
            transfers.push(ReportedTransfer {
                tx: r.try_get(0)?,
                token: r.try_get(1)?,
                from_wallet: r.try_get(2)?,
                from: r.try_get(3)?,
                to_wallet: r.try_get(4)?,
                to: r.try_get(5)?,
                amount: units(&r.try_get::<String, _>(6)?)?,
                kind: r.try_get(7)?,
                height: r.try_get::<i64, _>(8)? as u64,
                trade: r.try_get::<Option<i64>, _>(9)?.map(|t| t as u64),
            });
        }
        let report = ExchangeReport {
            exchange: s.config.org.clone(),
            seq,
            from_ms,
            to_ms: now.max(from_ms),
            prev,
            after_height,
            through_height,
            trades,
            transfers,
        };
        let hash = report.hash();
        let signed = SignedReport {
            signature: s
                .key
                .sign(tranche_crypto::Domain::ExchangeReport, &s.chain_id, &hash.0),
            hash: hash.to_hex(),
            report,
        };
        let body =
            serde_json::to_string(&signed).map_err(|e| ServiceError::internal("a report", e))?;
        sqlx::query(
            "INSERT INTO ex_reports (seq, from_ms, to_ms, hash, body, pushed, through_height) VALUES ($1, $2, $3, $4, $5, 0, $6)",
        )
        .bind(seq as i64)
        .bind(signed.report.from_ms as i64)
        .bind(signed.report.to_ms as i64)
        .bind(signed.hash.clone())
        .bind(body)
        .bind(through_height as i64)
        .execute(&mut *w.tx)
        .await?;
        let ids: Vec<i64> = signed
            .report
            .trades
            .iter()
            .map(|t| t.trade as i64)
            .collect();
        for chunk in ids.chunks(500) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE ex_trades SET report_seq = $1 WHERE id IN ({})",
                list.join(", ")
            )))
            .bind(seq as i64)
            .execute(&mut *w.tx)
            .await?;
        }
        audit::append(
            &mut w.tx,
            now,
            Entry::by_chain(
                &s.config.org,
                "report",
                format!("report/{seq}"),
                format!(
                    "{} trades, {} transfers, hash {}",
                    signed.report.trades.len(),
                    signed.report.transfers.len(),
                    signed.hash
                ),
            ),
        )
        .await?;
        w.commit().await?;
        Ok(signed)
    }

    /// Reports after number `after`, oldest first.
    pub async fn reports(&self, after: u64, limit: u32) -> Result<Vec<SignedReport>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT body FROM ex_reports WHERE seq > $1 ORDER BY seq LIMIT {}",
            limit.clamp(1, REPORTS_PAGE_MAX)
        )))
        .bind(after as i64)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|(b,)| serde_json::from_str(&b).map_err(|e| ServiceError::internal("a report", e)))
            .collect()
    }

    /// POSTs the reports not yet delivered to `report_url`, in order,
    /// signed; stops at the first the receiver does not take.
    async fn push_reports(&self, url: &str, client: &SignedClient) -> Result<(), ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, body FROM ex_reports WHERE pushed = 0 ORDER BY seq LIMIT 10",
        )
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        let (base, path) = split_url(url);
        for (seq, body) in rows {
            // In binary, hashed and kept by the receiver as it comes; a
            // report signed over its JSON (before) can only go as JSON.
            let signed: SignedReport =
                serde_json::from_str(&body).map_err(|e| ServiceError::internal("a report", e))?;
            let (media, body) = match signed.binary_if_hashed() {
                Some(binary) => (REPORT_MEDIA_TYPE, binary),
                None => ("application/json", body.into_bytes()),
            };
            let answered = client
                .send_as(reqwest::Method::POST, base, path, media, body)
                .await
                .map_err(ServiceError::unavailable)?;
            if !answered.status().is_success() {
                return Err(ServiceError::unavailable(format!(
                    "{url} answered {} to report {seq}",
                    answered.status()
                )));
            }
            let mut w = self.service.db.write().await?;
            sqlx::query("UPDATE ex_reports SET pushed = 1 WHERE seq = $1")
                .bind(seq)
                .execute(&mut *w.tx)
                .await?;
            w.commit().await?;
        }
        Ok(())
    }

    /// Closes a report every period and pushes what is not delivered.
    pub(crate) async fn report_periodically(self: Arc<Self>) {
        let client = SignedClient::new(
            Arc::clone(&self.service.key),
            self.service.chain_id.clone(),
            &self.service.config.org,
        );
        loop {
            // The regulator's period, once its policy is in force (F6-1).
            let period = self
                .market()
                .aml_policy()
                .map_or(self.policy.report_period_secs, |p| {
                    u64::from(p.report_period_secs)
                })
                * 1_000;
            let last_end = match self.reports_end().await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e.message, "reading the last report");
                    None
                }
            };
            let now = now_ms();
            // The first report covers from the service's first start.
            if last_end.is_none_or(|end| now >= end + period) {
                if let Err(e) = self.close_report().await {
                    tracing::warn!(error = %e.message, "closing a report");
                }
            }
            if let Some(url) = &self.policy.report_url {
                if let Err(e) = self.push_reports(url, &client).await {
                    tracing::warn!(error = %e.message, "pushing reports");
                }
            }
            tokio::time::sleep(Duration::from_millis(period.min(5_000))).await;
        }
    }

    async fn reports_end(&self) -> Result<Option<u64>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let end: Option<(i64,)> =
            sqlx::query_as("SELECT to_ms FROM ex_reports ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?;
        Ok(end.map(|(t,)| t as u64))
    }
}

/// `https://host:port/path` as its base and path.
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => {
            let at = url.len() - rest.len() + i;
            (&url[..at], &url[at..])
        }
        None => (url, "/"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_report_url_splits_into_base_and_path() {
        assert_eq!(
            super::split_url("https://reg.example:8443/reports/in"),
            ("https://reg.example:8443", "/reports/in")
        );
        assert_eq!(super::split_url("http://h"), ("http://h", "/"));
    }
}
