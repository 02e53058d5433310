//! Holders: a person with a KYC credential hands in their consent to
//! custody, and the custodian opens their custodial wallet on chain (SR-3);
//! their view of it; the webhook their notices go to.

use crate::Custodian;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tranche_api::node::Balance;
use tranche_ledger::Ledger;
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::Payload;

/// Longest webhook URL, in bytes.
pub const WEBHOOK_URL_MAX: usize = 512;

/// A holder's custodial wallet, as the custodian keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HolderView {
    /// The holder's DID.
    pub did: String,
    /// Their custodial wallet: send tokens here to deposit them.
    pub wallet: String,
    /// `opening`, `open` or `failed` (see `outcome`).
    pub state: String,
    /// The chain's outcome of the opening, once final.
    pub outcome: Option<String>,
    /// The number the holder's next authorization must carry.
    pub next_authorization: u64,
    /// Where notices are pushed, if the holder registered a webhook.
    pub webhook: Option<String>,
    /// The last event delivered to the webhook.
    pub delivered: u64,
    /// When it was opened here, ms since 1970.
    pub opened_ms: u64,
    /// Balances on chain now (only for a single holder's view).
    #[schema(value_type = Vec<Object>)]
    pub balances: Vec<Balance>,
}

/// `PUT /holders/me/webhook`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// An http:// or https:// URL the custodian POSTs each event to, signed;
    /// empty to stop.
    pub url: String,
}

pub(crate) type HolderRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    i64,
    i64,
);

pub(crate) const HOLDER_COLUMNS: &str =
    "did, wallet, state, outcome, next_number, webhook, delivered, opened_ms FROM cus_holders";

pub(crate) fn holder_view(r: HolderRow) -> HolderView {
    HolderView {
        did: r.0,
        wallet: r.1,
        state: r.2,
        outcome: r.3,
        next_authorization: r.4 as u64,
        webhook: r.5,
        delivered: r.6 as u64,
        opened_ms: r.7 as u64,
        balances: Vec::new(),
    }
}

pub(crate) async fn holder(
    conn: &mut AnyConnection,
    did: &str,
) -> Result<Option<HolderView>, sqlx::Error> {
    let row: Option<HolderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOLDER_COLUMNS} WHERE did = $1"
    )))
    .bind(did.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(holder_view))
}

pub(crate) async fn holders(conn: &mut AnyConnection) -> Result<Vec<HolderView>, sqlx::Error> {
    let rows: Vec<HolderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HOLDER_COLUMNS} ORDER BY opened_ms, did LIMIT 1000"
    )))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(holder_view).collect())
}

impl Custodian {
    /// Opens the caller's custodial wallet on their signed consent (the
    /// `open_custodial_wallet` payload `tranche did consent-custody`
    /// writes). Handing it in again answers the same wallet.
    pub async fn open_holder(
        &self,
        who: &Principal,
        consent: Payload,
    ) -> Result<HolderView, ServiceError> {
        who.require(crate::KYC)?;
        let s = &self.service;
        let Payload::OpenCustodialWallet(p) = consent else {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                "the body is your consent to custody: the open_custodial_wallet payload `tranche did consent-custody` writes",
            ));
        };
        if p.holder.as_str() != who.did {
            return Err(ServiceError::new(
                ServiceCode::Forbidden,
                "the consent is another DID's; hand in your own",
            ));
        }
        let org = s
            .config
            .org
            .parse()
            .map_err(|_| ServiceError::internal("the organisation id", &s.config.org))?;
        let key = Ledger::did_key(&p.holder).map_err(|r| {
            ServiceError::new(
                ServiceCode::BadRequest,
                format!("{}: {}", r.code, r.message),
            )
        })?;
        let message = Ledger::custody_message(&org, &p.holder);
        if tranche_crypto::verify(
            &key,
            tranche_crypto::Domain::CustodyConsent,
            &s.chain_id,
            &message,
            &p.consent,
        )
        .is_err()
        {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                format!(
                    "the consent is not your DID key's signature for {} on {}; make it with `tranche did consent-custody --custodian {}`",
                    s.config.org, s.chain_id, s.config.org
                ),
            ));
        }
        let wallet = Ledger::custodial_wallet(&org, &p.holder);
        let mut w = s.db.write().await?;
        if let Some(h) = holder(&mut w.tx, &who.did).await? {
            return Ok(h);
        }
        let e = Entry::by_person(
            who,
            crate::KYC,
            "open_custodial_wallet",
            who.did.clone(),
            format!("opening wallet {wallet}"),
        );
        let (nonce, hash) = s
            .decide_tx(&mut w.tx, Payload::OpenCustodialWallet(p), e)
            .await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO cus_holders (did, wallet, state, nonce, tx, next_number, delivered, attempts, retry_ms, opened_ms)
             VALUES ($1, $2, 'opening', $3, $4, 0, 0, 0, 0, $5)",
        )
        .bind(who.did.clone())
        .bind(wallet.to_string())
        .bind(nonce as i64)
        .bind(hash.to_hex())
        .bind(now as i64)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        s.send_soon();
        tracing::info!(wallet = %wallet, "custodial wallet recorded for opening");
        let mut conn = s.db.pool().acquire().await?;
        holder(&mut conn, &who.did)
            .await?
            .ok_or_else(|| ServiceError::internal("a holder just recorded", &who.did))
    }

    /// `did`'s holder view with their balances on chain.
    pub async fn holder_with_balances(&self, did: &str) -> Result<HolderView, ServiceError> {
        let s = &self.service;
        let mut conn = s.db.pool().acquire().await?;
        let Some(mut h) = holder(&mut conn, did).await? else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                format!(
                    "{did} holds no custodial wallet here; hand in your consent with POST /holders"
                ),
            ));
        };
        drop(conn);
        let wallet = h
            .wallet
            .parse()
            .map_err(|_| ServiceError::internal("a holder's wallet", &h.wallet))?;
        h.balances = s
            .node
            .wallet(&wallet)
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .balances;
        Ok(h)
    }

    /// Sets or clears the caller's webhook.
    pub async fn set_webhook(
        &self,
        who: &Principal,
        hook: Webhook,
    ) -> Result<HolderView, ServiceError> {
        let url = hook.url.trim();
        let ok = url.is_empty()
            || (url.len() <= WEBHOOK_URL_MAX
                && (url.starts_with("http://") || url.starts_with("https://"))
                && reqwest::Url::parse(url).is_ok());
        if !ok {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                format!("a webhook is an http:// or https:// URL of at most {WEBHOOK_URL_MAX} bytes, or empty to stop"),
            ));
        }
        let s = &self.service;
        let mut w = s.db.write().await?;
        let Some(h) = holder(&mut w.tx, &who.did).await? else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                "you hold no custodial wallet here",
            ));
        };
        let url = (!url.is_empty()).then(|| url.to_string());
        sqlx::query(
            "UPDATE cus_holders SET webhook = $1, attempts = 0, retry_ms = 0 WHERE did = $2",
        )
        .bind(url.clone())
        .bind(who.did.clone())
        .execute(&mut *w.tx)
        .await?;
        let decision = match &url {
            Some(_) => "notices pushed to a webhook".to_string(),
            None => "webhook removed".to_string(),
        };
        // The URL itself is the holder's: it stays out of the audit log.
        s.decide(
            &mut w.tx,
            None,
            Entry::by_person(who, crate::KYC, "set_webhook", h.did.clone(), decision),
        )
        .await?;
        w.commit().await?;
        self.events.tell();
        Ok(HolderView { webhook: url, ..h })
    }
}
