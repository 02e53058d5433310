//! Requests one organisation's service sends another, signed with the
//! sender's on-chain key: HTTP Message Signatures (RFC 9421) over the
//! method, the path and the body's digest (RFC 9530), with the time, a
//! nonce and the organisation's id as the key id.
//!
//! The receiver checks the signature against the key the chain records for
//! that organisation, and authorizes by the roles the chain records: nothing
//! is taken on the sender's word. A request older or newer than
//! [`SKEW_SECS`], or whose nonce was seen, is refused. The signature is an
//! ed25519 signature in the `service-request` domain of the chain, so it can
//! never pass as a transaction or another chain's request.

use crate::error::{ServiceCode, ServiceError};
use crate::Db;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tranche_api::client::NodeClient;
use tranche_crypto::{verify, Domain, Keypair};
use tranche_types::{ChainId, Role, Signature};

/// How far a request's time may be from the receiver's clock.
pub const SKEW_SECS: u64 = 300;
/// The components every signature covers, in this order.
pub const COVERED: &str = r#"("@method" "@path" "content-digest")"#;
/// The signature's label in the headers.
const LABEL: &str = "tranche";
/// Longest nonce and key id.
const PARAM_LEN_MAX: usize = 128;

/// The three headers a signed request carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Content-Digest`.
    pub content_digest: String,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
}

/// Who sent a signed request, as the chain knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The organisation.
    pub org: String,
    /// Its roles on chain.
    pub roles: Vec<Role>,
    /// The key the chain records for it, which signed the request.
    pub key: tranche_types::PublicKey,
}

impl Caller {
    /// Refuses unless the chain records `role` for the caller.
    pub fn require(&self, role: Role) -> Result<(), ServiceError> {
        if self.roles.contains(&role) {
            Ok(())
        } else {
            Err(ServiceError::new(
                ServiceCode::Forbidden,
                format!("{} does not hold the role {role:?} on chain", self.org),
            ))
        }
    }
}

fn digest(body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("sha-256=:{}:", b64.encode(Sha256::digest(body)))
}

fn params(created: u64, keyid: &str, nonce: &str) -> String {
    format!(r#"{COVERED};created={created};keyid="{keyid}";nonce="{nonce}";alg="ed25519""#)
}

fn base(method: &str, path: &str, content_digest: &str, params: &str) -> String {
    format!(
        "\"@method\": {method}\n\"@path\": {path}\n\"content-digest\": {content_digest}\n\"@signature-params\": {params}"
    )
}

/// Signs a request as organisation `keyid` with `key`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    key: &Keypair,
    chain_id: &ChainId,
    keyid: &str,
    method: &str,
    path: &str,
    body: &[u8],
    created_secs: u64,
    nonce: &str,
) -> SignedHeaders {
    let content_digest = digest(body);
    let params = params(created_secs, keyid, nonce);
    let msg = base(&method.to_ascii_uppercase(), path, &content_digest, &params);
    let sig = key.sign(Domain::ServiceRequest, chain_id, msg.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD;
    SignedHeaders {
        content_digest,
        signature_input: format!("{LABEL}={params}"),
        signature: format!("{LABEL}=:{}:", b64.encode(sig.0)),
    }
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::SignatureInvalid, message)
}

/// The parameters of a `Signature-Input` this scheme makes.
struct Input {
    created: u64,
    keyid: String,
    nonce: String,
}

fn parse_input(header: &str) -> Result<Input, ServiceError> {
    let rest = header
        .strip_prefix(&format!("{LABEL}="))
        .and_then(|r| r.strip_prefix(COVERED))
        .ok_or_else(|| bad(format!("Signature-Input must be {LABEL}={COVERED};created=…;keyid=\"…\";nonce=\"…\";alg=\"ed25519\"")))?;
    let (mut created, mut keyid, mut nonce, mut alg) = (None, None, None, None);
    for part in rest.split(';').skip(1) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad("a Signature-Input parameter has no value"))?;
        let quoted = || {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| !v.is_empty() && v.len() <= PARAM_LEN_MAX && !v.contains('"'))
                .map(str::to_string)
                .ok_or_else(|| {
                    bad(format!(
                        "{k} must be a quoted string of 1 to {PARAM_LEN_MAX} characters"
                    ))
                })
        };
        match k {
            "created" => {
                created = Some(
                    v.parse::<u64>()
                        .map_err(|_| bad("created must be whole seconds"))?,
                )
            }
            "keyid" => keyid = Some(quoted()?),
            "nonce" => nonce = Some(quoted()?),
            "alg" => alg = Some(quoted()?),
            other => return Err(bad(format!("unknown Signature-Input parameter {other}"))),
        }
    }
    if alg.as_deref() != Some("ed25519") {
        return Err(bad("alg must be \"ed25519\""));
    }
    Ok(Input {
        created: created.ok_or_else(|| bad("Signature-Input has no created"))?,
        keyid: keyid.ok_or_else(|| bad("Signature-Input has no keyid"))?,
        nonce: nonce.ok_or_else(|| bad("Signature-Input has no nonce"))?,
    })
}

/// Checks a signed request and names its sender: the digest matches the
/// body, the time is within [`SKEW_SECS`], the nonce is new, and the
/// signature verifies under the key the chain records for the key id.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    db: &Db,
    node: &NodeClient,
    chain_id: &ChainId,
    headers: &axum::http::HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<Caller, ServiceError> {
    let (caller, nonce) =
        verify_caller(node, chain_id, headers, method, path, body, now_ms).await?;
    nonce.claim_alone(db).await?;
    Ok(caller)
}

/// [`check`] but for the nonce, which the caller claims with
/// [`Nonce::claim`] in its own transaction.
pub async fn verify_caller(
    node: &NodeClient,
    chain_id: &ChainId,
    headers: &axum::http::HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<(Caller, Nonce), ServiceError> {
    verify_with(
        chain_id,
        headers,
        method,
        path,
        body,
        now_ms,
        |keyid| async move {
            let org = node
                .organisation(&keyid)
                .await
                .map_err(|e| {
                    ServiceError::new(
                        ServiceCode::NodeUnavailable,
                        format!("cannot ask the node about {keyid}: {e}"),
                    )
                })?
                .ok_or_else(|| {
                    ServiceError::new(
                        ServiceCode::Forbidden,
                        format!("no organisation {keyid} is on chain"),
                    )
                })?
                .data;
            Ok((
                org.key,
                Caller {
                    org: org.org.to_string(),
                    roles: org.roles,
                    key: org.key,
                },
            ))
        },
    )
    .await
}

/// [`check`] with the signer's key found by `key_of` from the key id: an
/// organisation's on chain, or one a service keeps (a trader's API key).
/// `key_of` answers the key and who it stands for, or why it is refused.
#[allow(clippy::too_many_arguments)]
pub async fn check_with<T, F, Fut>(
    db: &Db,
    chain_id: &ChainId,
    headers: &axum::http::HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    now_ms: u64,
    key_of: F,
) -> Result<T, ServiceError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(tranche_types::PublicKey, T), ServiceError>>,
{
    let (who, nonce) = verify_with(chain_id, headers, method, path, body, now_ms, key_of).await?;
    nonce.claim_alone(db).await?;
    Ok(who)
}

/// A verified request's nonce, not yet recorded: [`Nonce::claim`] records
/// it in the caller's transaction, and refuses it if it was seen.
#[derive(Debug)]
#[must_use = "a request is only taken once its nonce is claimed"]
pub struct Nonce {
    keyid: String,
    nonce: String,
    expires_ms: u64,
    now_ms: u64,
}

impl Nonce {
    /// Records the nonce in `conn`'s transaction; refuses a nonce seen
    /// before. A handler that writes anyway claims it in its own write
    /// turn (one wait for the turn, one commit); the request is taken when
    /// that transaction commits, and not at all if it rolls back.
    pub async fn claim(self, conn: &mut sqlx::AnyConnection) -> Result<(), ServiceError> {
        sqlx::query("DELETE FROM kit_request_nonces WHERE expires_ms < $1")
            .bind(self.now_ms as i64)
            .execute(&mut *conn)
            .await?;
        let fresh = sqlx::query(
            "INSERT INTO kit_request_nonces (keyid, nonce, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(self.keyid)
        .bind(self.nonce)
        .bind(self.expires_ms as i64)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if fresh == 0 {
            return Err(ServiceError::new(
                ServiceCode::ReplayedRequest,
                "this request was received already; sign a new one with a new nonce",
            ));
        }
        Ok(())
    }

    /// Claims the nonce in a transaction of its own.
    pub async fn claim_alone(self, db: &Db) -> Result<(), ServiceError> {
        let mut w = db.write().await?;
        self.claim(&mut w.tx).await?;
        w.commit().await?;
        Ok(())
    }
}

/// [`check_with`] but for the nonce, which the caller claims with
/// [`Nonce::claim`] in its own transaction.
pub async fn verify_with<T, F, Fut>(
    chain_id: &ChainId,
    headers: &axum::http::HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    now_ms: u64,
    key_of: F,
) -> Result<(T, Nonce), ServiceError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(tranche_types::PublicKey, T), ServiceError>>,
{
    let header = |name: &str| -> Result<&str, ServiceError> {
        headers
            .get(name)
            .ok_or_else(|| {
                ServiceError::new(
                    ServiceCode::Unauthenticated,
                    format!("this needs a signed request; the {name} header is missing"),
                )
            })?
            .to_str()
            .map_err(|_| bad(format!("{name} is not text")))
    };
    let content_digest = header("content-digest")?;
    let input = header("signature-input")?;
    let signature = header("signature")?;
    if content_digest != digest(body) {
        return Err(bad("Content-Digest does not match the body"));
    }
    let parsed = parse_input(input)?;
    let now = now_ms / 1000;
    if parsed.created.abs_diff(now) > SKEW_SECS {
        return Err(ServiceError::new(
            ServiceCode::StaleRequest,
            format!(
                "the request was signed at {}, {} s from this service's clock; sign it again now",
                parsed.created,
                parsed.created.abs_diff(now)
            ),
        ));
    }
    let sig_b64 = signature
        .strip_prefix(&format!("{LABEL}=:"))
        .and_then(|s| s.strip_suffix(':'))
        .ok_or_else(|| bad(format!("Signature must be {LABEL}=:<base64>:")))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .map_err(|_| bad("the signature is not base64"))?;
    let sig: [u8; 64] = raw
        .try_into()
        .map_err(|_| bad("an ed25519 signature is 64 bytes"))?;
    let (key, who) = key_of(parsed.keyid.clone()).await?;
    let msg = base(
        &method.to_ascii_uppercase(),
        path,
        content_digest,
        &params(parsed.created, &parsed.keyid, &parsed.nonce),
    );
    verify(
        &key,
        Domain::ServiceRequest,
        chain_id,
        msg.as_bytes(),
        &Signature(sig),
    )
    .map_err(|_| {
        bad(format!(
            "the signature does not verify under the key of {}",
            parsed.keyid
        ))
    })?;
    // Only a request that verified takes a nonce, so forged requests cannot
    // use up someone else's.
    let nonce = Nonce {
        keyid: parsed.keyid,
        nonce: parsed.nonce,
        expires_ms: (parsed.created + 2 * SKEW_SECS) * 1000,
        now_ms,
    };
    Ok((who, nonce))
}

/// Sends signed requests as one organisation.
#[derive(Clone, Debug)]
pub struct SignedClient {
    http: reqwest::Client,
    key: std::sync::Arc<Keypair>,
    chain_id: ChainId,
    org: String,
}

impl SignedClient {
    /// A client signing as `org` with `key` on `chain_id`.
    pub fn new(key: std::sync::Arc<Keypair>, chain_id: ChainId, org: &str) -> SignedClient {
        SignedClient {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("an HTTP client with default TLS builds"),
            key,
            chain_id,
            org: org.into(),
        }
    }

    /// Sends `method` `base` + `path` with `body` (JSON, may be empty),
    /// signed now with a fresh nonce.
    pub async fn send(
        &self,
        method: reqwest::Method,
        base: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.send_as(method, base, path, "application/json", body)
            .await
    }

    /// Sends `body` of media type `content_type`, as [`SignedClient::send`].
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        base: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let headers = sign(
            &self.key,
            &self.chain_id,
            &self.org,
            method.as_str(),
            path,
            &body,
            crate::now_ms() / 1000,
            &crate::random_hex()[..32],
        );
        self.http
            .request(method, format!("{}{path}", base.trim_end_matches('/')))
            .header("content-type", content_type)
            .header("content-digest", headers.content_digest)
            .header("signature-input", headers.signature_input)
            .header("signature", headers.signature)
            .body(body)
            .send()
            .await
    }
}
