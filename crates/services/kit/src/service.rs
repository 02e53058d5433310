//! One organisation's service: its key, node, database, vault, logins and
//! outbox, the kit's own routes, and the tasks that follow the chain, send
//! the outbox and anchor the audit log.

use crate::aml::AmlInForce;
use crate::audit;
use crate::auth::{Auth, Challenge, Login, Principal, Session};
use crate::config::ServiceConfig;
use crate::db::{Db, Migration};
use crate::error::{ServiceCode, ServiceError};
use crate::follower::{self, Apply};
use crate::http::{bearer, Json};
use crate::metrics::Metrics;
use crate::now_ms;
use crate::outbox::Outbox;
use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tranche_api::client::NodeClient;
use tranche_crypto::Keypair;
use tranche_types::{AnchorAudit, ChainId, Hash, Payload};
use tranche_vault::{MasterKey, Vault};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The role a staff member needs to read the audit log.
pub const AUDIT_READER_ROLES: &[&str] = &["staff:operator", "staff:admin", "staff:auditor"];
/// Most audit records one page holds.
pub const AUDIT_PAGE_MAX: u32 = 1_000;
/// How long the follower waits on its node for the next block before it
/// asks again.
const FOLLOW_WAIT: Duration = Duration::from_secs(5);
/// A block being fetched from the node.
type Fetch = tokio::task::JoinHandle<
    Result<Option<tranche_api::node::BlockRecord>, tranche_api::client::ClientError>,
>;
/// Most blocks the follower fetches at once while it catches up.
pub const FETCH_AHEAD: usize = 8;
/// Most blocks one run applies in one transaction.
const RUN_BLOCKS_MAX: usize = 16;
/// A run stops growing past this many movements, so one transaction
/// stays a bounded piece of work.
const RUN_TRANSFERS_MAX: usize = 20_000;
/// A run of at least this many movements is freed on a blocking thread.
const DROP_ASIDE_TRANSFERS: usize = 1_000;
/// Longest profile field, in bytes.
pub const PROFILE_FIELD_MAX: usize = 256;

/// An organisation's running service.
#[derive(Debug)]
pub struct Service {
    /// Its config.
    pub config: ServiceConfig,
    /// Its database.
    pub db: Db,
    /// Its node.
    pub node: NodeClient,
    /// The organisation's key.
    pub key: Arc<Keypair>,
    /// The chain.
    pub chain_id: ChainId,
    /// Where its transactions wait until the chain has them.
    pub outbox: Outbox,
    /// Logins.
    pub auth: Auth,
    /// Personal data.
    pub vault: Vault,
    /// Metrics.
    pub metrics: Metrics,
    /// The AML policy in force, asked of the node once per block followed.
    pub aml: AmlInForce,
    /// Wakes the outbox's sender.
    send_wake: tokio::sync::Notify,
}

impl Service {
    /// Opens the service: its key (checked against the chain's record of
    /// the organisation), its node, its database with the kit's and
    /// `role`'s migrations, and its vault.
    pub async fn open(config: ServiceConfig, role: &[Migration]) -> anyhow::Result<Arc<Service>> {
        let key =
            tranche_keystore::open_key_file(&config.key_file, config.password_file.as_deref())?;
        let ca = match &config.node_ca {
            Some(p) => Some(tranche_keystore::read_bounded(p, 1 << 20)?),
            None => None,
        };
        let node = NodeClient::new(&config.node, ca.as_deref())?;
        Service::open_with(config, key, node, role).await
    }

    /// [`Service::open`] with the key and node client given.
    pub async fn open_with(
        config: ServiceConfig,
        key: Keypair,
        node: NodeClient,
        role: &[Migration],
    ) -> anyhow::Result<Arc<Service>> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
        let status = node
            .status()
            .await
            .context("asking the node for its status")?;
        let org = node
            .organisation(&config.org)
            .await?
            .with_context(|| format!("no organisation {} is on chain", config.org))?
            .data;
        if org.key != key.public_key() {
            anyhow::bail!(
                "{} is not the key of {} on chain: the chain has {}",
                config.key_file.display(),
                config.org,
                org.key
            );
        }
        let db = Db::open(&config.database_url(), role).await?;
        let vault_key = match &config.vault_key_file {
            Some(p) => MasterKey::load(p)?,
            None => {
                let p = config.data_dir.join("vault.key");
                if !p.exists() {
                    let k = MasterKey::generate();
                    tranche_keystore::write_private_atomically(&p, k.to_hex().as_bytes())?;
                }
                MasterKey::load(&p)?
            }
        };
        let vault = Vault::open(db.pool().clone(), vault_key).await?;
        let key = Arc::new(key);
        let outbox = Outbox::new(Arc::clone(&key), status.chain_id.clone());
        {
            let mut w = db.write().await?;
            outbox
                .start_at(&mut w.tx, node.next_nonce(&key.public_key()).await?)
                .await?;
            w.commit().await?;
        }
        let auth = Auth::new(
            &config.org,
            config.domain(),
            Arc::clone(&key),
            config.trusted_issuers.clone(),
        );
        Ok(Arc::new(Service {
            config,
            db,
            node,
            key,
            chain_id: status.chain_id,
            outbox,
            auth,
            vault,
            metrics: Metrics::new(),
            aml: AmlInForce::default(),
            send_wake: tokio::sync::Notify::new(),
        }))
    }

    /// Who holds the session in `headers`.
    pub async fn principal(&self, headers: &HeaderMap) -> Result<Principal, ServiceError> {
        self.auth
            .session(&self.db, bearer(headers)?, now_ms())
            .await
    }

    /// The organisation that signed the request in `headers` (`method` on
    /// `path` with `body`) with its on-chain key, and its roles on chain.
    pub async fn signed_caller(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<crate::signed::Caller, ServiceError> {
        let (caller, nonce) = self
            .signed_caller_unclaimed(headers, method, path, body)
            .await?;
        nonce.claim_alone(&self.db).await?;
        Ok(caller)
    }

    /// [`Service::signed_caller`] but for the request's nonce, which the
    /// handler claims in its own write turn ([`crate::signed::Nonce::claim`]):
    /// for a handler that writes anyway, one wait for the turn and one
    /// commit instead of two.
    pub async fn signed_caller_unclaimed(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(crate::signed::Caller, crate::signed::Nonce), ServiceError> {
        crate::signed::verify_caller(
            &self.node,
            &self.chain_id,
            headers,
            method,
            path,
            body,
            now_ms(),
        )
        .await
    }

    /// Records `payload` in the outbox and `entry` (with the transaction's
    /// hash) in the audit log, in the caller's transaction.
    pub async fn decide(
        &self,
        conn: &mut sqlx::AnyConnection,
        payload: Option<Payload>,
        mut entry: audit::Entry,
    ) -> Result<Option<Hash>, ServiceError> {
        let now = now_ms();
        let hash = match payload {
            Some(p) => Some(self.outbox.record(conn, p, now).await?),
            None => None,
        };
        if let Some(h) = &hash {
            entry.tx = Some(h.to_hex());
        }
        audit::append(conn, now, entry).await?;
        Ok(hash)
    }

    /// Records the one transaction `payload` a decision sends and `entry`
    /// (with its hash), in the caller's transaction; returns its nonce,
    /// by which the follower knows it even if it is signed again, and hash.
    pub async fn decide_tx(
        &self,
        conn: &mut sqlx::AnyConnection,
        payload: Payload,
        mut entry: audit::Entry,
    ) -> Result<(u64, Hash), ServiceError> {
        let now = now_ms();
        let (nonce, hash) = self.outbox.record_nonced(conn, payload, now).await?;
        entry.tx = Some(hash.to_hex());
        audit::append(conn, now, entry).await?;
        Ok((nonce, hash))
    }

    /// Records `payloads`, sent together in nonce order, and one `entry`
    /// for the decision (with the last transaction's hash), in the caller's
    /// transaction; returns the last nonce, by which the follower knows the
    /// whole group is final (nonces are taken in order), and the hashes.
    pub async fn decide_txs(
        &self,
        conn: &mut sqlx::AnyConnection,
        payloads: Vec<Payload>,
        mut entry: audit::Entry,
    ) -> Result<(u64, Vec<Hash>), ServiceError> {
        let now = now_ms();
        let mut last = None;
        let mut hashes = Vec::with_capacity(payloads.len());
        for p in payloads {
            let (nonce, hash) = self.outbox.record_nonced(conn, p, now).await?;
            last = Some(nonce);
            hashes.push(hash);
        }
        let last = last.ok_or_else(|| ServiceError::internal("a decision", "no transaction"))?;
        entry.tx = hashes.last().map(Hash::to_hex);
        audit::append(conn, now, entry).await?;
        Ok((last, hashes))
    }

    /// The kit's routes: health, logins, the staff status list, the caller's
    /// profile and the audit log.
    pub fn routes(self: &Arc<Self>) -> OpenApiRouter {
        OpenApiRouter::new()
            .routes(routes!(healthz))
            .routes(routes!(challenge))
            .routes(routes!(session))
            .routes(routes!(staff_status))
            .routes(routes!(me))
            .routes(routes!(put_profile))
            .routes(routes!(audit_records))
            .routes(routes!(audit_export))
            .with_state(Arc::clone(self))
    }

    /// One anchoring step: if the audit log grew since the last anchor,
    /// records an `AnchorAudit` of its head. Returns the entries anchored.
    pub async fn anchor_audit(&self) -> Result<Option<u64>, ServiceError> {
        let mut w = self.db.write().await?;
        let (entries, head) = audit::head(&mut w.tx).await?;
        let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(entries), 0) FROM kit_anchors")
            .fetch_one(&mut *w.tx)
            .await?;
        if entries <= last as u64 {
            return Ok(None);
        }
        let head_hash =
            Hash::from_hex(&head).map_err(|e| ServiceError::internal("the audit head", e))?;
        let tx = self
            .outbox
            .record(
                &mut w.tx,
                Payload::AnchorAudit(AnchorAudit {
                    entries,
                    head: head_hash,
                }),
                now_ms(),
            )
            .await?;
        sqlx::query("INSERT INTO kit_anchors (entries, head, tx_hash) VALUES ($1, $2, $3)")
            .bind(entries as i64)
            .bind(head)
            .bind(tx.to_hex())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(Some(entries))
    }

    /// Applies every finalized block the node has past the cursor; returns
    /// how many.
    pub async fn follow_once(&self, role: &dyn Apply) -> Result<u64, ServiceError> {
        self.follow(role, Duration::ZERO).await
    }

    /// [`Service::follow_once`], waiting up to `wait` for the next block if
    /// the node has none yet: the follower hears of each block as it is
    /// finalized instead of polling for it.
    ///
    /// Behind the node (after a restart, or started late), it fetches up
    /// to [`FETCH_AHEAD`] of the blocks the node has finalized at once,
    /// and applies those already fetched as one run in one transaction
    /// (see [`follower::apply_run`]), so catching up is bound neither by
    /// one request's latency at a time nor by one commit per block. At the
    /// chain's head it asks for the next block alone, and applies each as
    /// it comes.
    pub async fn follow(&self, role: &dyn Apply, wait: Duration) -> Result<u64, ServiceError> {
        // Each block is fetched and decoded on another worker, overlapping
        // the role's work instead of adding to it.
        let fetch = |height: u64, wait: Duration| {
            let node = self.node.clone();
            tokio::spawn(async move { node.block_waiting(height, wait).await })
        };
        let mut applied = 0;
        let mut at = follower::cursor(&mut *self.db.pool().acquire().await?).await?;
        self.aml.followed(at);
        // Unknown (the node does not answer): one block at a time.
        let head = self.node.status().await.map_or(0, |s| s.finalized_height);
        let mut pending = std::collections::VecDeque::new();
        let mut asked = at;
        let stop = |pending: &mut std::collections::VecDeque<Fetch>| {
            pending.drain(..).for_each(|h| h.abort());
        };
        loop {
            while pending.len() < FETCH_AHEAD && asked < head {
                asked += 1;
                pending.push_back(fetch(asked, Duration::ZERO));
            }
            if pending.is_empty() {
                // At the head: once something is applied, only a look for a
                // block already there, so the caller hears of what was
                // applied (and sends what it recorded) without waiting.
                asked += 1;
                let wait = if applied > 0 { Duration::ZERO } else { wait };
                pending.push_back(fetch(asked, wait));
            }
            let fetched = |h: Option<Fetch>| async move {
                match h {
                    Some(h) => h
                        .await
                        .map_err(|e| ServiceError::internal("fetching a block", e))?
                        .map_err(ServiceError::unavailable),
                    None => Ok(None),
                }
            };
            let first = match fetched(pending.pop_front()).await {
                Ok(block) => block,
                Err(e) => {
                    stop(&mut pending);
                    return Err(e);
                }
            };
            let Some(first) = first else {
                stop(&mut pending);
                if let Ok(status) = self.node.status().await {
                    self.metrics.chain_lag.set(
                        i64::try_from(status.finalized_height.saturating_sub(at)).unwrap_or(0),
                    );
                }
                self.metrics.cursor.set(i64::try_from(at).unwrap_or(0));
                return Ok(applied);
            };
            // The run: the first block, then each next one already here.
            let mut transfers = first.transfers.len();
            let mut run = vec![first];
            while run.len() < RUN_BLOCKS_MAX
                && transfers < RUN_TRANSFERS_MAX
                && pending.front().is_some_and(|h| h.is_finished())
            {
                match fetched(pending.pop_front()).await {
                    Ok(Some(block)) => {
                        transfers += block.transfers.len();
                        run.push(block);
                    }
                    // Not there after all, or not fetched: ask again after
                    // the run.
                    Ok(None) | Err(_) => {
                        stop(&mut pending);
                        break;
                    }
                }
            }
            let last = run.last().map_or(at, |b| b.height);
            let outcome = follower::apply_run(&self.db, role, &self.outbox, &run).await;
            // Blocks of thousands of transactions take milliseconds to free:
            // on a blocking thread, not on the follower's path.
            let blocks = run.len() as u64;
            if transfers >= DROP_ASIDE_TRANSFERS {
                tokio::task::spawn_blocking(move || drop(run));
            }
            match outcome {
                Ok(true) => {
                    applied += blocks;
                    at = last;
                    self.aml.followed(at);
                    if pending.is_empty() {
                        asked = at;
                    }
                }
                Ok(false) => {
                    // Not the block after the cursor: start again from it.
                    stop(&mut pending);
                    at = follower::cursor(&mut *self.db.pool().acquire().await?).await?;
                    asked = at;
                }
                Err(e) => {
                    stop(&mut pending);
                    return Err(e);
                }
            }
        }
    }

    /// Wakes the outbox's sender: call it once a transaction recorded with
    /// a decision is committed, so it goes out now rather than at the next
    /// poll.
    pub fn send_soon(&self) {
        self.send_wake.notify_one();
    }

    /// Sends what the outbox holds; returns how many wait.
    pub async fn send_once(&self) -> Result<usize, ServiceError> {
        let n = self
            .outbox
            .send_pending(&self.db, &self.node, now_ms())
            .await?;
        self.metrics.queue("outbox", n);
        Ok(n)
    }

    /// Runs the service: follows the chain with `role`, sends the outbox,
    /// anchors the audit log, and serves `router` until SIGINT or SIGTERM.
    pub async fn run(
        self: Arc<Self>,
        role: Arc<dyn Apply>,
        router: axum::Router,
    ) -> anyhow::Result<()> {
        let poll = Duration::from_millis(self.config.poll_ms);
        let follower = {
            let s = Arc::clone(&self);
            tokio::spawn(async move {
                loop {
                    match s.follow(role.as_ref(), FOLLOW_WAIT).await {
                        // A block may have recorded transactions to send.
                        Ok(n) if n > 0 => s.send_soon(),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "following the chain");
                            tokio::time::sleep(poll).await;
                        }
                    }
                }
            })
        };
        let sender = {
            let s = Arc::clone(&self);
            tokio::spawn(async move {
                loop {
                    if let Err(e) = s.send_once().await {
                        tracing::warn!(error = %e, "sending the outbox");
                    }
                    // Woken when something is recorded, else every poll.
                    let _ = tokio::time::timeout(poll, s.send_wake.notified()).await;
                }
            })
        };
        let anchorer = {
            let s = Arc::clone(&self);
            let every = Duration::from_secs(self.config.anchor_interval_secs);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match s.anchor_audit().await {
                        Ok(Some(n)) => tracing::info!(entries = n, "audit log anchored"),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "anchoring the audit log"),
                    }
                }
            })
        };
        let tls = match &self.config.tls {
            Some(t) => {
                Some(tranche_api::tls::server_config(&t.cert, &t.key).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(self.config.listen)
            .await
            .with_context(|| format!("listening on {}", self.config.listen))?;
        tracing::info!(
            org = %self.config.org,
            listen = %listener.local_addr()?,
            tls = tls.is_some(),
            "service API up"
        );
        let serve = tranche_api::tls::serve(listener, tls, router);
        tokio::select! {
            r = serve => r.context("serving the API")?,
            _ = shutdown() => tracing::info!("stopping"),
        }
        follower.abort();
        sender.abort();
        anchorer.abort();
        Ok(())
    }
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `GET /healthz`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// The organisation served.
    pub org: String,
    /// The last block applied.
    pub cursor: u64,
}

/// Whether the service and its database answer.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, body = Health), (status = 500, body = ServiceError)))]
async fn healthz(State(s): State<Arc<Service>>) -> Result<axum::Json<Health>, ServiceError> {
    let cursor = follower::cursor(&mut *s.db.pool().acquire().await?).await?;
    Ok(axum::Json(Health {
        status: "ok".into(),
        org: s.config.org.clone(),
        cursor,
    }))
}

/// A login challenge, answered within five minutes by `POST /auth/session`.
#[utoipa::path(post, path = "/auth/challenge", tag = "auth",
    responses((status = 200, body = Challenge), (status = 409, body = ServiceError)))]
async fn challenge(State(s): State<Arc<Service>>) -> Result<axum::Json<Challenge>, ServiceError> {
    Ok(axum::Json(s.auth.challenge(&s.db, now_ms()).await?))
}

/// Log in: a presentation over the challenge and this service's domain.
#[utoipa::path(post, path = "/auth/session", tag = "auth", request_body = Login,
    responses((status = 200, body = Session), (status = 401, body = ServiceError)))]
async fn session(
    State(s): State<Arc<Service>>,
    Json(login): Json<Login>,
) -> Result<axum::Json<Session>, ServiceError> {
    Ok(axum::Json(s.auth.login(&s.db, &login, now_ms()).await?))
}

/// The organisation's staff status list (a Bitstring Status List credential).
#[utoipa::path(get, path = "/status/staff", tag = "auth",
    responses((status = 200, description = "The status list credential", content_type = "application/json")))]
async fn staff_status(
    State(s): State<Arc<Service>>,
) -> Result<axum::Json<serde_json::Value>, ServiceError> {
    let mut conn = s.db.pool().acquire().await?;
    Ok(axum::Json(
        s.auth.staff_status_list(&mut conn, now_ms()).await?,
    ))
}

/// `GET /me`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    /// The caller's DID.
    pub did: String,
    /// Their roles.
    pub roles: Vec<String>,
    /// Whether they left a profile (kept in the vault).
    pub has_profile: bool,
}

/// Who the session belongs to.
#[utoipa::path(get, path = "/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ServiceError)))]
async fn me(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<axum::Json<Me>, ServiceError> {
    let p = s.principal(&headers).await?;
    let has_profile = s.vault.get(&p.did, "profile").await?.is_some();
    Ok(axum::Json(Me {
        did: p.did,
        roles: p.roles,
        has_profile,
    }))
}

/// A person's contact details: kept only in the vault, encrypted.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Their name.
    pub name: String,
    /// How to reach them.
    #[serde(default)]
    pub email: Option<String>,
    /// Where they live, as their KYC documents give it.
    #[serde(default)]
    pub address: Option<String>,
}

/// Leave or replace one's profile (in the vault only).
#[utoipa::path(put, path = "/me/profile", tag = "auth", request_body = Profile,
    responses((status = 204), (status = 400, body = ServiceError), (status = 401, body = ServiceError)))]
async fn put_profile(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Json(profile): Json<Profile>,
) -> Result<axum::http::StatusCode, ServiceError> {
    let p = s.principal(&headers).await?;
    for (field, value) in [
        ("name", Some(&profile.name)),
        ("email", profile.email.as_ref()),
        ("address", profile.address.as_ref()),
    ] {
        if let Some(v) = value {
            if v.is_empty() || v.len() > PROFILE_FIELD_MAX {
                return Err(ServiceError::new(
                    ServiceCode::BadRequest,
                    format!("{field} must be 1 to {PROFILE_FIELD_MAX} bytes"),
                ));
            }
        }
    }
    let bytes = serde_json::to_vec(&profile).expect("a profile serializes");
    let email = profile.email.as_deref().map(str::to_lowercase);
    let index: Vec<(&str, &str)> = email.as_deref().map(|e| ("email", e)).into_iter().collect();
    // In the write turn, like every other write of the service.
    let mut w = s.db.write().await?;
    s.vault
        .put_in(&mut w.tx, &p.did, "profile", &bytes, &index)
        .await?;
    w.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Which audit records.
#[derive(Clone, Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditPage {
    /// Records after this place (0: from the first).
    #[serde(default)]
    pub after: u64,
    /// At most this many (default and maximum 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

async fn audit_reader(s: &Service, headers: &HeaderMap) -> Result<(), ServiceError> {
    let p = s.principal(headers).await?;
    if AUDIT_READER_ROLES
        .iter()
        .any(|r| p.roles.iter().any(|x| x == r))
    {
        Ok(())
    } else {
        Err(ServiceError::new(
            ServiceCode::Forbidden,
            format!("the audit log is read by staff in the roles {AUDIT_READER_ROLES:?}"),
        ))
    }
}

/// A page of the audit log.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditPage),
    responses((status = 200, body = Vec<audit::Record>), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn audit_records(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Query(page): Query<AuditPage>,
) -> Result<axum::Json<Vec<audit::Record>>, ServiceError> {
    audit_reader(&s, &headers).await?;
    let limit = page
        .limit
        .unwrap_or(AUDIT_PAGE_MAX)
        .clamp(1, AUDIT_PAGE_MAX);
    let mut conn = s.db.pool().acquire().await?;
    Ok(axum::Json(
        audit::records(&mut conn, page.after, limit).await?,
    ))
}

/// The whole audit log with its anchors, to verify against the chain
/// (`tranche audit verify`).
#[utoipa::path(get, path = "/audit/export", tag = "audit",
    responses((status = 200, body = audit::Export), (status = 401, body = ServiceError), (status = 403, body = ServiceError)))]
async fn audit_export(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
) -> Result<axum::Json<audit::Export>, ServiceError> {
    audit_reader(&s, &headers).await?;
    let mut conn = s.db.pool().acquire().await?;
    let mut records = Vec::new();
    loop {
        let page = audit::records(&mut conn, records.len() as u64, AUDIT_PAGE_MAX).await?;
        if page.is_empty() {
            break;
        }
        records.extend(page);
    }
    Ok(axum::Json(audit::Export {
        org: s.config.org.clone(),
        records,
        anchors: audit::anchors(&mut conn).await?,
    }))
}
