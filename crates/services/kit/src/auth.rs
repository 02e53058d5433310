//! People log in with a DID (SR-5): the service hands out a one-time
//! challenge; the person answers with a verifiable presentation over that
//! challenge and the service's domain, holding credentials from issuers the
//! service trusts; the service answers a short-lived session token and keeps
//! only its hash. No passwords, and nothing personal: a session holds a DID
//! and the roles its credentials earned.
//!
//! The organisation's own staff log in the same way, with a staff credential
//! the organisation issued with its on-chain key ([`Auth::issue_staff`]);
//! revoking one ([`Auth::revoke_staff`]) flips its bit in the organisation's
//! status list, which every login checks.

use crate::error::{ServiceCode, ServiceError};
use crate::{random_hex, sha256_hex, Db};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;
use std::collections::HashMap;
use std::sync::Arc;
use tranche_crypto::Keypair;
use tranche_identity::{
    issue_credential, status_list_credential, verify_presentation, CredentialKind,
    CredentialRequest, DidKey, StatusEntry, StatusList, VerifyOptions,
};
use tranche_types::Timestamp;

/// How long a login challenge may be answered.
pub const CHALLENGE_TTL_MS: u64 = 5 * 60_000;
/// How long a session lasts.
pub const SESSION_TTL_MS: u64 = 15 * 60_000;
/// Most unanswered challenges kept at once; beyond it new ones are refused
/// until old ones expire, so challenge requests cannot fill the database.
pub const CHALLENGES_MAX: i64 = 10_000;
/// The role a staff credential in role `r` earns: `staff:r`.
pub const STAFF_ROLE_PREFIX: &str = "staff:";
/// What a credential with a country of residence (a jurisdiction
/// credential) also earns: `country:KR`.
pub const COUNTRY_ROLE_PREFIX: &str = "country:";

/// `POST /auth/challenge`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Challenge {
    /// What the presentation's proof must carry as its challenge.
    pub challenge: String,
    /// What it must carry as its domain.
    pub domain: String,
    /// Until when it may be answered, ms since 1970.
    pub expires_ms: u64,
}

/// `POST /auth/session`'s body.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Login {
    /// The challenge answered.
    pub challenge: String,
    /// The presentation (`tranche vp present`).
    #[schema(value_type = Object)]
    pub presentation: Value,
}

/// `POST /auth/session`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    /// The bearer token: `Authorization: Bearer <token>`.
    pub token: String,
    /// Who logged in.
    pub did: String,
    /// The roles their credentials earned.
    pub roles: Vec<String>,
    /// Until when the token works, ms since 1970.
    pub expires_ms: u64,
}

/// Who is calling, as a session says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Their DID.
    pub did: String,
    /// Their roles.
    pub roles: Vec<String>,
    /// The ids (or types) of the credentials that earned them.
    pub credentials: Vec<String>,
}

impl Principal {
    /// Refuses unless the caller holds `role`.
    pub fn require(&self, role: &str) -> Result<(), ServiceError> {
        if self.roles.iter().any(|r| r == role) {
            Ok(())
        } else {
            Err(ServiceError::new(
                ServiceCode::Forbidden,
                format!("this needs the role {role}; log in with a credential that grants it"),
            ))
        }
    }

    /// The country of residence a credential asserted, if any.
    pub fn country(&self) -> Option<&str> {
        self.roles
            .iter()
            .find_map(|r| r.strip_prefix(COUNTRY_ROLE_PREFIX))
    }

    /// The credential that earned `role`, for the audit log.
    pub fn credential_for(&self, role: &str) -> String {
        self.roles
            .iter()
            .position(|r| r == role)
            .and_then(|i| self.credentials.get(i).cloned())
            .unwrap_or_default()
    }
}

/// A staff credential as the organisation keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StaffMember {
    /// Its place in the status list.
    pub status_index: u64,
    /// The staff member's DID.
    pub subject: String,
    /// Their role.
    pub role: String,
    /// The credential's id.
    pub credential_id: String,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// People's sessions a service remembers; past this it forgets them all
/// and reads them again.
pub const SESSIONS_REMEMBERED: usize = 100_000;

/// Logins for one organisation's service.
#[derive(Clone, Debug)]
pub struct Auth {
    org: String,
    domain: String,
    key: Arc<Keypair>,
    trusted: Vec<String>,
    /// Sessions without a staff role, by token hash, with their expiry.
    /// Nothing but time ends such a session (revoking a staff credential
    /// ends the sessions it opened, from any process, so those are always
    /// read from the database), so remembering one until it expires answers
    /// exactly as the database would, without a read per request.
    people: Arc<std::sync::Mutex<HashMap<String, (Principal, u64)>>>,
}

fn refuse(code: ServiceCode, message: impl Into<String>) -> ServiceError {
    ServiceError::new(code, message)
}

impl Auth {
    /// Logins for `org`'s service at `domain`, whose staff credentials are
    /// signed with `key`; other credentials are taken from `trusted` issuers.
    pub fn new(org: &str, domain: &str, key: Arc<Keypair>, trusted: Vec<String>) -> Auth {
        Auth {
            org: org.into(),
            domain: domain.into(),
            key,
            trusted,
            people: Arc::default(),
        }
    }

    /// The organisation's DID: the did:key of its on-chain key.
    pub fn org_did(&self) -> String {
        DidKey::from_public_key(&self.key.public_key()).did()
    }

    /// The staff status list's id.
    pub fn status_list_url(&self) -> String {
        format!("urn:tranche:{}:staff-status", self.org)
    }

    /// A new challenge, kept until answered or expired.
    pub async fn challenge(&self, db: &Db, now_ms: u64) -> Result<Challenge, ServiceError> {
        let mut w = db.write().await?;
        sqlx::query("DELETE FROM kit_challenges WHERE expires_ms < $1")
            .bind(now_ms as i64)
            .execute(&mut *w.tx)
            .await?;
        let (open,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM kit_challenges")
            .fetch_one(&mut *w.tx)
            .await?;
        if open >= CHALLENGES_MAX {
            return Err(refuse(
                ServiceCode::Conflict,
                "too many logins are under way; try again in a few minutes",
            ));
        }
        let challenge = random_hex();
        let expires_ms = now_ms + CHALLENGE_TTL_MS;
        sqlx::query("INSERT INTO kit_challenges (challenge, expires_ms) VALUES ($1, $2)")
            .bind(challenge.clone())
            .bind(expires_ms as i64)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(Challenge {
            challenge,
            domain: self.domain.clone(),
            expires_ms,
        })
    }

    /// The organisation's staff status list credential, as of now.
    pub async fn staff_status_list(
        &self,
        conn: &mut AnyConnection,
        now_ms: u64,
    ) -> Result<Value, ServiceError> {
        let revoked: Vec<(i64,)> =
            sqlx::query_as("SELECT status_index FROM kit_staff WHERE revoked = 1")
                .fetch_all(&mut *conn)
                .await?;
        let mut list = StatusList::new();
        for (i,) in revoked {
            list.set(i as usize, true);
        }
        status_list_credential(&self.key, &self.status_list_url(), &list, Timestamp(now_ms))
            .map_err(|e| ServiceError::internal("the staff status list", e))
    }

    /// Verifies a login and opens a session: the challenge is used up
    /// whatever the outcome, so an answer can be tried only once.
    pub async fn login(
        &self,
        db: &Db,
        login: &Login,
        now_ms: u64,
    ) -> Result<Session, ServiceError> {
        if login.challenge.len() > 128 {
            return Err(refuse(
                ServiceCode::BadRequest,
                "the challenge is at most 128 characters",
            ));
        }
        let mut w = db.write().await?;
        let used =
            sqlx::query("DELETE FROM kit_challenges WHERE challenge = $1 AND expires_ms >= $2")
                .bind(login.challenge.clone())
                .bind(now_ms as i64)
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
        w.commit().await?;
        if used == 0 {
            return Err(refuse(
                ServiceCode::ChallengeUnknown,
                "the challenge is unknown, used or expired; ask POST /auth/challenge for a new one",
            ));
        }
        let list = self
            .staff_status_list(&mut *db.pool().acquire().await?, now_ms)
            .await?;
        let list_url = self.status_list_url();
        let lookup = move |url: &str| (url == list_url).then(|| list.clone());
        let own = self.org_did();
        let mut trusted = self.trusted.clone();
        trusted.push(own.clone());
        let verified = verify_presentation(
            &login.presentation,
            &login.challenge,
            &self.domain,
            &VerifyOptions {
                now: Timestamp(now_ms),
                trusted_issuers: Some(&trusted),
                status_lists: &lookup,
            },
        )
        .map_err(|e| {
            refuse(
                ServiceCode::PresentationInvalid,
                format!("the presentation does not verify: {e}"),
            )
        })?;
        let mut roles = Vec::new();
        let mut credentials = Vec::new();
        for c in &verified.credentials {
            let credential = c.id.clone().unwrap_or_else(|| c.types.join("+"));
            if c.types.iter().any(|t| t == "StaffCredential") {
                // Only the organisation itself makes its staff.
                let org = c.claims.get("organisation").and_then(Value::as_str);
                let role = c.claims.get("staffRole").and_then(Value::as_str);
                if c.signer == own && org == Some(self.org.as_str()) {
                    if let Some(role) = role {
                        roles.push(format!("{STAFF_ROLE_PREFIX}{role}"));
                        credentials.push(credential);
                    }
                }
                continue;
            }
            if c.signer != own {
                for t in c.types.iter().filter(|t| *t != "VerifiableCredential") {
                    roles.push(t.clone());
                    credentials.push(credential.clone());
                }
                // Where they live, for AML rules on jurisdictions (F6-1).
                if let Some(country) = c.claims.get("countryOfResidence").and_then(Value::as_str) {
                    roles.push(format!("{COUNTRY_ROLE_PREFIX}{country}"));
                    credentials.push(credential.clone());
                }
            }
        }
        let token = random_hex();
        let expires_ms = now_ms + SESSION_TTL_MS;
        let mut w = db.write().await?;
        sqlx::query("DELETE FROM kit_sessions WHERE expires_ms < $1")
            .bind(now_ms as i64)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO kit_sessions (token_hash, did, roles, credentials, expires_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(verified.holder.clone())
        .bind(serde_json::to_string(&roles).expect("strings serialize"))
        .bind(serde_json::to_string(&credentials).expect("strings serialize"))
        .bind(expires_ms as i64)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        tracing::info!(did = %verified.holder, roles = ?roles, "logged in");
        Ok(Session {
            token,
            did: verified.holder,
            roles,
            expires_ms,
        })
    }

    /// Who holds the session `token`, if it is live.
    pub async fn session(
        &self,
        db: &Db,
        token: &str,
        now_ms: u64,
    ) -> Result<Principal, ServiceError> {
        let hash = sha256_hex(token.as_bytes());
        if let Some((p, expires)) = self.remembered(&hash) {
            if expires >= now_ms {
                return Ok(p);
            }
        }
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT did, roles, credentials, expires_ms FROM kit_sessions WHERE token_hash = $1",
        )
        .bind(hash.clone())
        .fetch_optional(db.pool())
        .await?;
        match row {
            Some((did, roles, credentials, expires)) if expires as u64 >= now_ms => {
                let p = Principal {
                    did,
                    roles: serde_json::from_str(&roles).unwrap_or_default(),
                    credentials: serde_json::from_str(&credentials).unwrap_or_default(),
                };
                if !p.roles.iter().any(|r| r.starts_with("staff:")) {
                    self.remember(hash, &p, expires as u64);
                }
                Ok(p)
            }
            Some(_) => Err(refuse(
                ServiceCode::Unauthenticated,
                "the session expired; log in again",
            )),
            None => Err(refuse(
                ServiceCode::Unauthenticated,
                "no such session; log in first",
            )),
        }
    }

    fn remembered(&self, hash: &str) -> Option<(Principal, u64)> {
        let people = self.people.lock().unwrap_or_else(|e| e.into_inner());
        people.get(hash).cloned()
    }

    fn remember(&self, hash: String, p: &Principal, expires_ms: u64) {
        let mut people = self.people.lock().unwrap_or_else(|e| e.into_inner());
        if people.len() >= SESSIONS_REMEMBERED {
            people.clear();
        }
        people.insert(hash, (p.clone(), expires_ms));
    }

    /// Issues a staff credential for `subject` in `role`, valid until
    /// `valid_until_ms`, signed with the organisation's key.
    pub async fn issue_staff(
        &self,
        db: &Db,
        subject: &str,
        role: &str,
        valid_until_ms: u64,
        now_ms: u64,
    ) -> Result<Value, ServiceError> {
        DidKey::parse(subject).map_err(|e| {
            refuse(
                ServiceCode::BadRequest,
                format!("the subject must be a did:key: {e}"),
            )
        })?;
        let mut w = db.write().await?;
        let (next,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(status_index), -1) + 1 FROM kit_staff")
                .fetch_one(&mut *w.tx)
                .await?;
        let index = next as usize;
        if index >= tranche_identity::LIST_BITS_MIN {
            return Err(refuse(
                ServiceCode::Conflict,
                "the staff status list is full",
            ));
        }
        let id = format!("urn:tranche:{}:staff:{index}", self.org);
        let vc = issue_credential(&CredentialRequest {
            id: Some(id.clone()),
            issuer: &self.key,
            subject: subject.into(),
            kind: CredentialKind::Staff {
                organisation: self.org.clone(),
                role: role.into(),
            },
            valid_from: Timestamp(now_ms),
            valid_until: Some(Timestamp(valid_until_ms)),
            status: Some(StatusEntry {
                list: self.status_list_url(),
                index,
            }),
        })
        .map_err(|e| refuse(ServiceCode::BadRequest, e.to_string()))?;
        sqlx::query(
            "INSERT INTO kit_staff (status_index, subject, role, credential_id, revoked, issued_ms)
             VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(index as i64)
        .bind(subject.to_string())
        .bind(role.to_string())
        .bind(id.clone())
        .bind(now_ms as i64)
        .execute(&mut *w.tx)
        .await?;
        let entry = self.staff_entry("issue-staff-credential", id, format!("{subject} as {role}"));
        crate::audit::append(&mut w.tx, now_ms, entry).await?;
        w.commit().await?;
        Ok(vc)
    }

    /// Revokes the staff credential `credential_id`; false if there is none.
    pub async fn revoke_staff(
        &self,
        db: &Db,
        credential_id: &str,
        now_ms: u64,
    ) -> Result<bool, ServiceError> {
        let mut w = db.write().await?;
        let n = sqlx::query("UPDATE kit_staff SET revoked = 1 WHERE credential_id = $1")
            .bind(credential_id.to_string())
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if n > 0 {
            // Sessions it opened end with it.
            sqlx::query("DELETE FROM kit_sessions WHERE credentials LIKE $1")
                .bind(format!("%\"{credential_id}\"%"))
                .execute(&mut *w.tx)
                .await?;
            let entry = self.staff_entry(
                "revoke-staff-credential",
                credential_id.into(),
                "revoked".into(),
            );
            crate::audit::append(&mut w.tx, now_ms, entry).await?;
        }
        w.commit().await?;
        Ok(n > 0)
    }

    /// The audit entry of a change to the staff, made on the organisation's
    /// own authority.
    fn staff_entry(&self, action: &str, subject: String, decision: String) -> crate::audit::Entry {
        crate::audit::Entry {
            actor: self.org.clone(),
            authority: "organisation-key".into(),
            action: action.into(),
            subject,
            decision,
            reason: None,
            tx: None,
        }
    }

    /// The organisation's staff credentials.
    pub async fn staff(&self, db: &Db) -> Result<Vec<StaffMember>, ServiceError> {
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT status_index, subject, role, credential_id, revoked FROM kit_staff ORDER BY status_index",
        )
        .fetch_all(db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(i, subject, role, credential_id, revoked)| StaffMember {
                status_index: i as u64,
                subject,
                role,
                credential_id,
                revoked: revoked != 0,
            })
            .collect())
    }
}
