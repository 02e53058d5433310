//! Traders' API keys: an ed25519 key a trader registers in a session, then
//! signs each request with (HTTP Message Signatures, as organisations sign
//! theirs, the key id being the key in hex), for programs that trade
//! without logging in. Who calls is either.

use crate::Exchange;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::PublicKey;

/// The most keys a trader has in use.
pub const KEYS_PER_TRADER_MAX: i64 = 5;

/// `POST /traders/me/keys`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// The ed25519 public key, hex (`tranche key show NAME --json`'s `public_key`).
    pub key: String,
}

/// An API key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// The key, hex: the `keyid` of the requests it signs.
    pub key: String,
    /// When it was registered, ms since 1970.
    pub created_ms: u64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<u64>,
}

/// Who calls an order endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Who {
    /// Their DID.
    pub did: String,
    /// Staff who read everyone's orders and trades (sessions only).
    pub staff: bool,
}

fn key_of(hex: &str) -> Result<PublicKey, ServiceError> {
    serde_json::from_value(serde_json::Value::String(hex.to_string())).map_err(|_| {
        ServiceError::new(
            ServiceCode::BadRequest,
            "key is an ed25519 public key: 64 hex digits",
        )
    })
}

impl Exchange {
    /// Registers an API key for the caller (a trader, in a session).
    pub async fn add_key(&self, who: &Principal, k: NewApiKey) -> Result<ApiKeyView, ServiceError> {
        key_of(&k.key)?;
        let key = k.key.to_lowercase();
        if !self.market().traders.contains_key(&who.did) {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                "you are not a trader here yet: POST /traders first",
            ));
        }
        let s = &self.service;
        let mut w = s.db.write().await?;
        let owner: Option<(String,)> = sqlx::query_as("SELECT did FROM ex_api_keys WHERE key = $1")
            .bind(key.clone())
            .fetch_optional(&mut *w.tx)
            .await?;
        match owner {
            Some((d,)) if d == who.did => {}
            Some(_) => {
                return Err(ServiceError::new(
                    ServiceCode::Conflict,
                    "this key is registered already; make a key of your own",
                ))
            }
            None => {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM ex_api_keys WHERE did = $1 AND revoked_ms IS NULL",
                )
                .bind(who.did.clone())
                .fetch_one(&mut *w.tx)
                .await?;
                if n >= KEYS_PER_TRADER_MAX {
                    return Err(ServiceError::new(
                        ServiceCode::Conflict,
                        format!("a trader has at most {KEYS_PER_TRADER_MAX} keys in use; revoke one first"),
                    ));
                }
                let now = now_ms();
                sqlx::query("INSERT INTO ex_api_keys (key, did, created_ms) VALUES ($1, $2, $3)")
                    .bind(key.clone())
                    .bind(who.did.clone())
                    .bind(now as i64)
                    .execute(&mut *w.tx)
                    .await?;
                tranche_service::audit::append(
                    &mut w.tx,
                    now,
                    tranche_service::audit::Entry::by_person(
                        who,
                        crate::TRADER[0],
                        "add_api_key",
                        format!("api-key/{key}"),
                        "registered".into(),
                    ),
                )
                .await?;
            }
        }
        w.commit().await?;
        self.key_view(&key).await
    }

    async fn key_view(&self, key: &str) -> Result<ApiKeyView, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let (key, created, revoked): (String, i64, Option<i64>) =
            sqlx::query_as("SELECT key, created_ms, revoked_ms FROM ex_api_keys WHERE key = $1")
                .bind(key.to_string())
                .fetch_one(&mut *conn)
                .await?;
        Ok(ApiKeyView {
            key,
            created_ms: created as u64,
            revoked_ms: revoked.map(|r| r as u64),
        })
    }

    /// The caller's keys.
    pub async fn keys(&self, did: &str) -> Result<Vec<ApiKeyView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT key, created_ms, revoked_ms FROM ex_api_keys WHERE did = $1 ORDER BY created_ms",
        )
        .bind(did.to_string())
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, c, r)| ApiKeyView {
                key,
                created_ms: c as u64,
                revoked_ms: r.map(|r| r as u64),
            })
            .collect())
    }

    /// Revokes one of the caller's keys.
    pub async fn revoke_key(&self, who: &Principal, key: &str) -> Result<ApiKeyView, ServiceError> {
        let key = key.to_lowercase();
        let s = &self.service;
        let mut w = s.db.write().await?;
        let done = sqlx::query(
            "UPDATE ex_api_keys SET revoked_ms = $1 WHERE key = $2 AND did = $3 AND revoked_ms IS NULL",
        )
        .bind(now_ms() as i64)
        .bind(key.clone())
        .bind(who.did.clone())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                "you have no such key in use",
            ));
        }
        tranche_service::audit::append(
            &mut w.tx,
            now_ms(),
            tranche_service::audit::Entry::by_person(
                who,
                crate::TRADER[0],
                "revoke_api_key",
                format!("api-key/{key}"),
                "revoked".into(),
            ),
        )
        .await?;
        w.commit().await?;
        self.key_view(&key).await
    }

    /// Who calls: a request signed with a trader's API key, or a session.
    pub(crate) async fn who(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Who, ServiceError> {
        let s = &self.service;
        if !headers.contains_key("signature-input") {
            let p = s.principal(headers).await?;
            return Ok(Who {
                staff: crate::is_staff(&p),
                did: p.did,
            });
        }
        let db = &s.db;
        let did = tranche_service::signed::check_with(
            db,
            &s.chain_id,
            headers,
            method,
            path,
            body,
            now_ms(),
            |keyid| async move {
                let key = key_of(&keyid)?;
                let mut conn = db.pool().acquire().await?;
                let owner: Option<(String,)> = sqlx::query_as(
                    "SELECT did FROM ex_api_keys WHERE key = $1 AND revoked_ms IS NULL",
                )
                .bind(keyid.to_lowercase())
                .fetch_optional(&mut *conn)
                .await?;
                let (did,) = owner.ok_or_else(|| {
                    ServiceError::new(
                        ServiceCode::SignatureInvalid,
                        "the request's key is no trader's key in use here",
                    )
                })?;
                Ok((key, did))
            },
        )
        .await?;
        Ok(Who { did, staff: false })
    }
}
