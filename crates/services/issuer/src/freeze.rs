//! Freeze requests from a regulator: taken only from an organisation the
//! chain records as a regulator, by a request signed with its on-chain key,
//! for a token this issuer is the agent of; queued for the staff's
//! decisions like any request; the approval that completes the quorum
//! sends the freeze, and the follower checks it on chain.

use crate::queue::{self, Kind, RequestView};
use crate::Issuer;
use tranche_api::freeze::FreezeRequest;
use tranche_service::audit::Entry;
use tranche_service::signed::Caller;
use tranche_service::{ServiceCode, ServiceError};
use tranche_types::{Role, Units, WalletAddress};

fn refused(m: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::Refused, m)
}

impl Issuer {
    /// Queues the freeze request `body` from `caller`; the same request
    /// again is answered with where it stands.
    pub async fn receive_freeze(
        &self,
        caller: &Caller,
        body: &[u8],
    ) -> Result<RequestView, ServiceError> {
        caller.require(Role::Regulator)?;
        let request: FreezeRequest = serde_json::from_slice(body).map_err(|e| {
            ServiceError::new(
                ServiceCode::BadRequest,
                format!("the body is not a freeze request: {e}"),
            )
        })?;
        request
            .check(&caller.org)
            .map_err(|m| ServiceError::new(ServiceCode::BadRequest, m))?;
        let wallet: WalletAddress = request.wallet.parse().map_err(|_| {
            ServiceError::new(
                ServiceCode::BadRequest,
                format!("{} is not a wallet address", request.wallet),
            )
        })?;
        let s = &self.service;
        let detail = serde_json::to_string(&request).expect("a freeze request serializes");
        let mut conn = s.db.pool().acquire().await?;
        let known: Option<(String,)> = sqlx::query_as(
            "SELECT detail FROM issuer_requests WHERE kind = 'freeze' AND request = $1",
        )
        .bind(request.id.clone())
        .fetch_optional(&mut *conn)
        .await?;
        drop(conn);
        if let Some((d,)) = known {
            if d != detail {
                return Err(ServiceError::new(
                    ServiceCode::Conflict,
                    format!(
                        "freeze request {} was received with other terms; a new request takes a new number",
                        request.id
                    ),
                ));
            }
            return self.freeze_view(&request.id).await;
        }
        let token = s
            .node
            .token(&request.token)
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| refused(format!("no token {} on chain", request.token)))?;
        if token.data.token.issuer.as_str() != s.config.org {
            return Err(refused(format!(
                "{} is not the agent of {}; its issuer {} is",
                s.config.org, request.token, token.data.token.issuer
            )));
        }
        let height = token.height;
        let mut w = s.db.write().await?;
        let filed = queue::file(
            &mut w.tx,
            Kind::Freeze,
            &request.id,
            &caller.org,
            &request.token,
            Units(0),
            detail,
            height,
        )
        .await?;
        if filed {
            let e = Entry {
                reason: Some(request.reason.clone()),
                ..Entry::by_chain(
                    &caller.org,
                    "file",
                    format!("freeze/{}", request.id),
                    format!("queued: freeze {wallet} for {}", request.token),
                )
            };
            s.decide(&mut w.tx, None, e).await?;
        }
        w.commit().await?;
        tracing::info!(request = %request.id, regulator = %caller.org, "freeze request queued");
        self.freeze_view(&request.id).await
    }

    async fn freeze_view(&self, id: &str) -> Result<RequestView, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        queue::get(&mut conn, Kind::Freeze, id, self.approvals_required)
            .await?
            .ok_or_else(|| ServiceError::internal("a queued freeze request", id))
    }
}
