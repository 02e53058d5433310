//! Notices (SR-3): every finalized transfer touching a holder's wallet is
//! an event with a stable id, which the holder reads from a cursor, follows
//! over a live stream (server-sent events), and receives at their webhook,
//! signed by the custodian, at least once, retried with backoff.

use crate::Custodian;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tranche_service::{now_ms, ServiceError};
use tranche_types::Units;

/// Most events one page or one webhook delivery holds.
pub const EVENTS_PAGE_MAX: u32 = 1_000;
/// The longest pause between two webhook attempts after failures.
const RETRY_MAX_MS: u64 = 60_000;
/// The first pause after a failed delivery; doubled each time.
const RETRY_FIRST_MS: u64 = 500;
/// How long a webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the stream and the sender look even when not woken (a
/// reader whose query failed, say).
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// The header carrying the custodian's signature over a delivery's body.
pub const SIGNATURE_HEADER: &str = "x-tranche-signature";
/// The header naming the custodian that signed.
pub const SIGNER_HEADER: &str = "x-tranche-signer";

/// Wakes the readers of events (live streams, the webhook sender) once
/// the events are committed, and loses no wake: each reader holds a
/// receiver that remembers the last count it saw, so events committed
/// while it was reading wake it at once instead of at the next [`POLL`].
#[derive(Debug)]
pub(crate) struct Wake {
    /// How many commits made events: the readers wait for it to change.
    count: watch::Sender<u64>,
    /// The block being applied made events; told when it commits.
    pending: AtomicBool,
}

impl Default for Wake {
    fn default() -> Self {
        Wake {
            count: watch::Sender::new(0),
            pending: AtomicBool::new(false),
        }
    }
}

impl Wake {
    /// A reader's receiver: it wakes on the commits after this call.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.count.subscribe()
    }

    /// Notes that the block in the follower's transaction made events.
    pub(crate) fn pending(&self) {
        self.pending.store(true, Ordering::Release);
    }

    /// After the follower's commit: wakes the readers if the block made
    /// events.
    pub(crate) fn committed(&self) {
        if self.pending.swap(false, Ordering::AcqRel) {
            self.tell();
        }
    }

    /// Wakes the readers now (after a commit of one's own).
    pub(crate) fn tell(&self) {
        self.count.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Waits until events are committed after `rx` last woke, or [`POLL`]
/// passes.
pub(crate) async fn wait_for_events(rx: &mut watch::Receiver<u64>) {
    let _ = tokio::time::timeout(POLL, rx.changed()).await;
}

/// A transfer touching a holder's custodial wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventView {
    /// Its stable id (`<height>-<index>-<in|out>`): the same event delivered
    /// twice carries the same id.
    pub id: String,
    /// Its place in the custodian's order of events: the cursor.
    pub seq: u64,
    /// The holder's DID.
    pub did: String,
    /// Their custodial wallet.
    pub wallet: String,
    /// `in` or `out` of the wallet.
    pub direction: String,
    /// The token.
    pub token: String,
    /// Units.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The other wallet (none for an issuance or a minting).
    pub counterparty: Option<String>,
    /// How: `holder`, `custodial`, `issuance`, `escrow`, ...
    pub kind: String,
    /// The reference it carried.
    pub reference: Option<String>,
    /// The transaction.
    pub tx: String,
    /// Its block.
    pub height: u64,
    /// The block's time, ms since 1970.
    pub block_time_ms: u64,
    /// The wallet's balance of the token after it.
    #[schema(value_type = String)]
    pub balance: Units,
}

/// Events after `after`, of `did` if given, oldest first, at most `limit`.
pub(crate) async fn events_after(
    conn: &mut AnyConnection,
    did: Option<&str>,
    after: u64,
    limit: u32,
) -> Result<Vec<EventView>, ServiceError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::from(limit.clamp(1, EVENTS_PAGE_MAX));
    let rows: Vec<(String,)> = match did {
        Some(d) => {
            sqlx::query_as(
                "SELECT body FROM cus_events WHERE did = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(d.to_string())
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_as("SELECT body FROM cus_events WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.into_iter()
        .map(|(b,)| serde_json::from_str(&b).map_err(|e| ServiceError::internal("an event", e)))
        .collect()
}

/// When to try a failed delivery again, after `attempts` failures.
pub(crate) fn retry_after_ms(attempts: u32) -> u64 {
    RETRY_FIRST_MS
        .saturating_mul(1u64 << attempts.min(20))
        .min(RETRY_MAX_MS)
}

/// A webhook due a delivery: the holder, the URL, the last event
/// delivered, the failures so far.
type Due = (String, String, i64, i64);

impl Custodian {
    /// Pushes each holder's new events to their webhook until the service
    /// stops: one signed POST of the events after the last delivered, the
    /// cursor advanced only on a 2xx answer (so at least once), retried
    /// with backoff.
    pub(crate) async fn send_webhooks(self: Arc<Self>) {
        let http = match reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook client; no webhooks are sent");
                return;
            }
        };
        let mut woken = self.events.subscribe();
        loop {
            if let Err(e) = self.deliver_once(&http).await {
                tracing::warn!(error = %e.message, "webhook deliveries failed; trying again");
            }
            wait_for_events(&mut woken).await;
        }
    }

    /// One round of deliveries; returns how many were made.
    pub async fn deliver_once(&self, http: &reqwest::Client) -> Result<usize, ServiceError> {
        let s = &self.service;
        let now = now_ms();
        let mut conn = s.db.pool().acquire().await?;
        let due: Vec<Due> = sqlx::query_as(
            "SELECT h.did, h.webhook, h.delivered, h.attempts FROM cus_holders h
             WHERE h.webhook IS NOT NULL AND h.retry_ms <= $1
               AND EXISTS (SELECT 1 FROM cus_events e WHERE e.did = h.did AND e.seq > h.delivered)
             ORDER BY h.did LIMIT 100",
        )
        .bind(now as i64)
        .fetch_all(&mut *conn)
        .await?;
        let mut sent = 0;
        for (did, url, delivered, attempts) in due {
            let events = events_after(&mut conn, Some(&did), delivered as u64, 100).await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                continue;
            };
            let body =
                serde_json::to_vec(&events).map_err(|e| ServiceError::internal("a delivery", e))?;
            let signature = s
                .key
                .sign(tranche_crypto::Domain::Notice, &s.chain_id, &body);
            let answer = http
                .post(&url)
                .header("content-type", "application/json")
                .header(SIGNER_HEADER, s.config.org.clone())
                .header(SIGNATURE_HEADER, hex::encode(signature.0))
                .body(body)
                .send()
                .await;
            let ok = answer.as_ref().is_ok_and(|r| r.status().is_success());
            // Writes take the service's write turn, as every write does:
            // SQLite's writer is one at a time.
            let mut w = s.db.write().await?;
            if ok {
                // Only if nobody moved the cursor meanwhile.
                sqlx::query(
                    "UPDATE cus_holders SET delivered = $1, attempts = 0, retry_ms = 0
                     WHERE did = $2 AND delivered = $3",
                )
                .bind(last as i64)
                .bind(did.clone())
                .bind(delivered)
                .execute(&mut *w.tx)
                .await?;
                sent += events.len();
            } else {
                let failures = u32::try_from(attempts)
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                let why = match answer {
                    Ok(r) => format!("status {}", r.status()),
                    Err(e) => e.without_url().to_string(),
                };
                tracing::info!(failures, why, "a webhook delivery failed; retrying later");
                sqlx::query("UPDATE cus_holders SET attempts = $1, retry_ms = $2 WHERE did = $3")
                    .bind(i64::from(failures))
                    .bind((now + retry_after_ms(failures)) as i64)
                    .bind(did)
                    .execute(&mut *w.tx)
                    .await?;
            }
            w.commit().await?;
        }
        let backlog: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM cus_holders h WHERE h.webhook IS NOT NULL
               AND EXISTS (SELECT 1 FROM cus_events e WHERE e.did = h.did AND e.seq > h.delivered)",
        )
        .fetch_one(&mut *conn)
        .await?;
        s.metrics
            .queue("webhooks_behind", usize::try_from(backlog.0).unwrap_or(0));
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_wake_on_the_commit_not_before_and_miss_none() {
        let wake = Wake::default();
        let mut reader = wake.subscribe();
        // Events written inside the follower's transaction: not yet.
        wake.pending();
        assert!(!reader.has_changed().unwrap());
        wake.committed();
        assert!(reader.has_changed().unwrap());
        reader.mark_unchanged();
        // A commit without events wakes nobody.
        wake.committed();
        assert!(!reader.has_changed().unwrap());
        // Two commits while the reader was busy: one wake, not lost.
        wake.pending();
        wake.committed();
        wake.tell();
        assert!(reader.has_changed().unwrap());
    }

    #[test]
    fn retries_back_off_to_a_minute() {
        assert_eq!(retry_after_ms(1), 1_000);
        assert_eq!(retry_after_ms(2), 2_000);
        assert_eq!(retry_after_ms(7), 60_000);
        assert_eq!(retry_after_ms(u32::MAX), 60_000);
    }
}
