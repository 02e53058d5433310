//! Publishing the AML policy (F6-1): the next version, taking effect a
//! configured number of blocks on, recorded in the outbox with the
//! decision before it is sent; the follower records its outcome.

use crate::Regulator;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{AmlPolicy, Payload, PublishAmlPolicy};

/// `POST /policy`: the next version of the AML policy.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// The policy: `report_period_secs`, `limits` (per asset: `asset`,
    /// `large_value`, `daily_value_max`, `travel_rule_value`, amounts as
    /// decimal strings of minor units, 0 for none), `blocked_countries`
    /// (ISO 3166-1 alpha-2), `sanctioned` (DIDs).
    #[schema(value_type = Object)]
    pub policy: AmlPolicy,
    /// The first block it governs; `policy_delay_blocks` from now unless
    /// given.
    #[serde(default)]
    pub effective_height: Option<u64>,
}

/// What a publication answers.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Published {
    /// The version.
    pub version: u32,
    /// The first block it governs.
    pub effective_height: u64,
    /// The transaction, on its way to the chain.
    pub tx: String,
}

/// Checks what the ledger's types do not: a period of at most a month,
/// one limit per asset.
pub(crate) fn check(p: &AmlPolicy) -> Result<(), ServiceError> {
    let bad = |m: String| Err(ServiceError::new(ServiceCode::BadRequest, m));
    if !(1..=31 * 86_400).contains(&p.report_period_secs) {
        return bad("report_period_secs is 1 to 2678400 (31 days)".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for l in p.limits.iter() {
        if !seen.insert(l.asset.as_str()) {
            return bad(format!("limits name {} twice", l.asset));
        }
    }
    Ok(())
}

impl Regulator {
    /// Publishes `r` as the next version of the policy, decided by `who`
    /// (or by the service itself, for its configured first policy).
    pub async fn publish(
        &self,
        who: Option<&Principal>,
        r: PolicyRequest,
    ) -> Result<Published, ServiceError> {
        if let Some(p) = who {
            p.require(crate::OPERATOR)?;
        }
        check(&r.policy)?;
        let s = &self.service;
        let chain = s
            .node
            .aml_policy()
            .await
            .map_err(ServiceError::unavailable)?;
        let height = chain.height;
        let last_on_chain = chain.data.versions.last().map_or(0, |v| v.version);
        let effective_height = r
            .effective_height
            .unwrap_or(height + self.section.policy_delay_blocks);
        if effective_height <= height {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                format!("effective_height must be above the chain's height, {height}"),
            ));
        }
        let mut w = s.db.write().await?;
        let pending: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM rg_policies WHERE state = 'pending'")
                .fetch_optional(&mut *w.tx)
                .await?;
        if let Some((v,)) = pending {
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!(
                    "version {v} is on its way to the chain; publish the next once it is final"
                ),
            ));
        }
        let version = last_on_chain + 1;
        let payload = Payload::PublishAmlPolicy(PublishAmlPolicy {
            version,
            effective_height,
            policy: r.policy.clone(),
        });
        let entry = match who {
            Some(p) => Entry::by_person(
                p,
                crate::OPERATOR,
                "publish_policy",
                format!("aml-policy/{version}"),
                format!("governs from block {effective_height}"),
            ),
            None => Entry::by_chain(
                &s.config.org,
                "publish_policy",
                format!("aml-policy/{version}"),
                format!("the configured first policy, governing from block {effective_height}"),
            ),
        };
        let (nonce, hash) = s.decide_tx(&mut w.tx, payload, entry).await?;
        sqlx::query(
            "INSERT INTO rg_policies (nonce, version, effective_height, state, at_ms)
             VALUES ($1, $2, $3, 'pending', $4)",
        )
        .bind(nonce as i64)
        .bind(i64::from(version))
        .bind(effective_height as i64)
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        s.send_soon();
        Ok(Published {
            version,
            effective_height,
            tx: hash.to_hex(),
        })
    }

    /// Publishes the configured policy if the chain has none and none is
    /// on its way; retries while the node is unreachable.
    pub(crate) async fn publish_first_policy(self: Arc<Self>) {
        let Some(policy) = self.section.policy.clone() else {
            return;
        };
        loop {
            let attempt = async {
                let chain = self
                    .service
                    .node
                    .aml_policy()
                    .await
                    .map_err(ServiceError::unavailable)?;
                let mut conn = self.service.db.pool().acquire().await?;
                let (ours,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM rg_policies WHERE state IN ('pending', 'in_force_soon')",
                )
                .fetch_one(&mut *conn)
                .await?;
                drop(conn);
                if chain.data.versions.is_empty() && ours == 0 {
                    self.publish(
                        None,
                        PolicyRequest {
                            policy: policy.clone(),
                            effective_height: None,
                        },
                    )
                    .await?;
                }
                Ok::<(), ServiceError>(())
            };
            match attempt.await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e.message, "publishing the first AML policy"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}
