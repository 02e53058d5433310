//! Corporate actions the TSP takes for its tokens' holders: a profit
//! distribution paid in a bank's deposit token (F5-9) — a checkpoint of
//! the holders, the declaration over it and the money into the pool, three
//! transactions recorded in one decision — and a redemption when the asset
//! is sold (F5-10): a revocation request carrying the sale proceeds per
//! unit, whose execution the TSP verifies on chain (SR-1).

use crate::assets::refuse;
use crate::Tsp;
use serde::{Deserialize, Serialize};
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{
    CreateCheckpoint, DeclareDistribution, FundDistribution, Money, Payload, ReclaimDistribution,
    Redemption, RequestId, RequestRevocation, Timestamp, TokenId, Units,
};

/// The longest claim period, in seconds: a year.
pub const CLAIM_SECS_MAX: u64 = 366 * 86_400;

/// `POST /distributions`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDistribution {
    /// The distribution's id.
    #[schema(value_type = String)]
    pub distribution: RequestId,
    /// The token whose holders are paid, at a checkpoint taken now.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// The profit to distribute.
    #[schema(value_type = Object)]
    pub total: Money,
    /// The deposit token it is paid in, from the TSP's wallet.
    #[schema(value_type = String)]
    pub cash_token: TokenId,
    /// How long holders may claim, in seconds; then the TSP reclaims the rest.
    pub claim_secs: u64,
}

/// `POST /redemptions`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRedemption {
    /// The revocation request's id.
    #[schema(value_type = String)]
    pub request: RequestId,
    /// The token revoked.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// Units revoked.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The sale proceeds paid per unit, in `cash_token`, from the TSP's
    /// wallet when it files.
    #[schema(value_type = Object)]
    pub unit_price: Money,
    /// The deposit token the proceeds are paid in.
    #[schema(value_type = String)]
    pub cash_token: TokenId,
}

/// A corporate action as the TSP follows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionView {
    /// `distribution` or `redemption`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// The token.
    pub token: String,
    /// `sending`, `funded` / `filed`, `failed`, `reclaiming`, `reclaimed`,
    /// `verified` or `mismatch`.
    pub state: String,
    /// The TSP's verification of a redemption's revocation (SR-1).
    pub verified: Option<String>,
    /// The last thing that happened, for a person.
    pub note: String,
}

impl Tsp {
    /// Checks `token` is one of this TSP's and its wallet holds `needed` of
    /// `cash`.
    async fn check_action(
        &self,
        token: &TokenId,
        cash: &TokenId,
        needed: u128,
    ) -> Result<(), ServiceError> {
        let s = &self.service;
        let t = s
            .node
            .token(token.as_str())
            .await
            .map_err(ServiceError::unavailable)?
            .ok_or_else(|| refuse(ServiceCode::NotFound, format!("no token {token} on chain")))?;
        if t.data.token.tsp.as_ref().map(|o| o.as_str()) != Some(s.config.org.as_str()) {
            return Err(refuse(
                ServiceCode::Forbidden,
                format!("{token} is not a token of {}", s.config.org),
            ));
        }
        let held = s
            .node
            .wallet(&s.key.public_key().address())
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .balances
            .iter()
            .find(|b| b.token == *cash)
            .map_or(0, |b| b.units.0);
        if held < needed {
            return Err(refuse(
                ServiceCode::Conflict,
                format!(
                    "the TSP's wallet holds {held} of {cash}; {needed} are needed: deposit at the bank first"
                ),
            ));
        }
        Ok(())
    }

    async fn record_action(
        &self,
        conn: &mut sqlx::AnyConnection,
        (kind, id, token): (&str, &str, &str),
        nonce: u64,
        staff: &str,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "INSERT INTO tsp_actions (kind, id, token, staff, nonce, state, note, updated_ms)
             VALUES ($1, $2, $3, $4, $5, 'sending', 'sent', $6)",
        )
        .bind(kind.to_string())
        .bind(id.to_string())
        .bind(token.to_string())
        .bind(staff.to_string())
        .bind(nonce as i64)
        .bind(now_ms() as i64)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Declares and funds a distribution (an operator): checkpoint,
    /// declaration and funding, recorded together.
    pub async fn distribute(
        &self,
        who: &Principal,
        new: NewDistribution,
    ) -> Result<ActionView, ServiceError> {
        who.require(crate::OPERATOR)?;
        if !(1..=CLAIM_SECS_MAX).contains(&new.claim_secs) || new.total.minor.0 == 0 {
            return Err(refuse(
                ServiceCode::BadRequest,
                format!("claim_secs is 1 to {CLAIM_SECS_MAX} and the total above zero"),
            ));
        }
        let s = &self.service;
        let id = new.distribution.to_string();
        let mut w = s.db.write().await?;
        if let Some(v) = self.action(&mut w.tx, "distribution", &id).await? {
            return Ok(v);
        }
        self.check_action(&new.token, &new.cash_token, new.total.minor.0)
            .await?;
        let checkpoint = s
            .node
            .token(new.token.as_str())
            .await
            .map_err(ServiceError::unavailable)?
            .map_or(0, |t| t.data.token.checkpoints)
            + 1;
        let deadline = now_ms() + new.claim_secs * 1_000;
        let subject = format!("distribution/{id}");
        let entry = |action: &str, decision: String| {
            Entry::by_person(who, crate::OPERATOR, action, subject.clone(), decision)
        };
        let steps = [
            (
                Payload::CreateCheckpoint(CreateCheckpoint {
                    token: new.token.clone(),
                }),
                entry(
                    "checkpoint",
                    format!("checkpoint {checkpoint} of {}", new.token),
                ),
            ),
            (
                Payload::DeclareDistribution(DeclareDistribution {
                    distribution: new.distribution.clone(),
                    token: new.token.clone(),
                    checkpoint,
                    total: new.total.clone(),
                }),
                entry(
                    "declare",
                    format!("{} over checkpoint {checkpoint}", new.total),
                ),
            ),
            (
                Payload::FundDistribution(FundDistribution {
                    distribution: new.distribution.clone(),
                    cash_token: new.cash_token.clone(),
                    deadline: Timestamp(deadline),
                }),
                entry("fund", format!("funded in {}", new.cash_token)),
            ),
        ];
        let mut last = 0;
        for (payload, e) in steps {
            last = s.decide_tx(&mut w.tx, payload, e).await?.0;
        }
        self.record_action(
            &mut w.tx,
            ("distribution", &id, new.token.as_str()),
            last,
            &who.did,
        )
        .await?;
        sqlx::query(
            "UPDATE tsp_actions SET deadline_ms = $1 WHERE kind = 'distribution' AND id = $2",
        )
        .bind(deadline as i64)
        .bind(id.clone())
        .execute(&mut *w.tx)
        .await?;
        let v = self
            .action(&mut w.tx, "distribution", &id)
            .await?
            .expect("just written");
        w.commit().await?;
        Ok(v)
    }

    /// Takes back what holders did not claim of a funded distribution, once
    /// its deadline has passed (an operator, F5-9).
    pub async fn reclaim(&self, who: &Principal, id: &str) -> Result<ActionView, ServiceError> {
        who.require(crate::OPERATOR)?;
        let s = &self.service;
        let mut w = s.db.write().await?;
        let row: Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT state, deadline_ms FROM tsp_actions WHERE kind = 'distribution' AND id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some((state, deadline)) = row else {
            return Err(refuse(
                ServiceCode::NotFound,
                format!("no distribution {id} was made here"),
            ));
        };
        match state.as_str() {
            "reclaiming" | "reclaimed" => {
                return Ok(self
                    .action(&mut w.tx, "distribution", id)
                    .await?
                    .expect("read above"))
            }
            "funded" => {}
            other => {
                return Err(refuse(
                    ServiceCode::Conflict,
                    format!("the distribution is {other}; only a funded one is reclaimed"),
                ))
            }
        }
        let deadline = deadline.unwrap_or(i64::MAX) as u64;
        if now_ms() < deadline {
            return Err(refuse(
                ServiceCode::Conflict,
                format!("holders claim until {deadline} (ms since 1970); reclaim after"),
            ));
        }
        let payload = Payload::ReclaimDistribution(ReclaimDistribution {
            distribution: id
                .parse()
                .map_err(|_| ServiceError::internal("a distribution's id", id))?,
        });
        let e = Entry::by_person(
            who,
            crate::OPERATOR,
            "reclaim",
            format!("distribution/{id}"),
            "the unclaimed back to the TSP's wallet".into(),
        );
        let (nonce, _) = s.decide_tx(&mut w.tx, payload, e).await?;
        sqlx::query(
            "UPDATE tsp_actions SET state = 'reclaiming', nonce = $1, updated_ms = $2
             WHERE kind = 'distribution' AND id = $3",
        )
        .bind(nonce as i64)
        .bind(now_ms() as i64)
        .bind(id.to_string())
        .execute(&mut *w.tx)
        .await?;
        let v = self
            .action(&mut w.tx, "distribution", id)
            .await?
            .expect("read above");
        w.commit().await?;
        Ok(v)
    }

    /// Files a redemption (an operator): a revocation request carrying the
    /// sale proceeds per unit, paid from the TSP's wallet.
    pub async fn redeem(
        &self,
        who: &Principal,
        new: NewRedemption,
    ) -> Result<ActionView, ServiceError> {
        who.require(crate::OPERATOR)?;
        let proceeds = new
            .amount
            .0
            .checked_mul(new.unit_price.minor.0)
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                refuse(
                    ServiceCode::BadRequest,
                    "amount × unit price must be above zero and fit",
                )
            })?;
        let s = &self.service;
        let id = new.request.to_string();
        let mut w = s.db.write().await?;
        if let Some(v) = self.action(&mut w.tx, "redemption", &id).await? {
            return Ok(v);
        }
        self.check_action(&new.token, &new.cash_token, proceeds)
            .await?;
        let payload = Payload::RequestRevocation(RequestRevocation {
            request: new.request.clone(),
            token: new.token.clone(),
            amount: new.amount,
            redemption: Some(Redemption {
                cash_token: new.cash_token.clone(),
                unit_price: new.unit_price.clone(),
            }),
        });
        let e = Entry::by_person(
            who,
            crate::OPERATOR,
            "redeem",
            format!("redemption/{id}"),
            format!(
                "revoke {} of {} paying {} each",
                new.amount, new.token, new.unit_price
            ),
        );
        let (nonce, _) = s.decide_tx(&mut w.tx, payload, e).await?;
        self.record_action(
            &mut w.tx,
            ("redemption", &id, new.token.as_str()),
            nonce,
            &who.did,
        )
        .await?;
        let v = self
            .action(&mut w.tx, "redemption", &id)
            .await?
            .expect("just written");
        w.commit().await?;
        Ok(v)
    }

    /// A corporate action as the TSP follows it.
    pub(crate) async fn action(
        &self,
        conn: &mut sqlx::AnyConnection,
        kind: &str,
        id: &str,
    ) -> Result<Option<ActionView>, ServiceError> {
        let row: Option<(String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT token, state, verified, note FROM tsp_actions WHERE kind = $1 AND id = $2",
        )
        .bind(kind.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|(token, state, verified, note)| ActionView {
            kind: kind.into(),
            id: id.into(),
            token,
            state,
            verified,
            note,
        }))
    }

    /// The issuer carried out a revocation: the TSP's check of it (SR-1).
    pub(crate) async fn verify_revocation(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: &str,
        tx: &str,
    ) -> Result<(), ServiceError> {
        if self.action(conn, "redemption", id).await?.is_none() {
            return Ok(());
        }
        let s = &self.service;
        let check = s
            .node
            .revocation(id)
            .await
            .map_err(ServiceError::unavailable)?
            .and_then(|v| v.data.check);
        let (ok, text) = match check {
            Some(c) if c.executed && c.revoked == Some(c.requested) => (
                true,
                format!("revoked {} of {} requested", c.requested, c.requested),
            ),
            Some(c) => (
                false,
                format!("revoked {:?} of {} requested", c.revoked, c.requested),
            ),
            None => (false, "the chain shows no check".into()),
        };
        sqlx::query(
            "UPDATE tsp_actions SET state = $1, verified = $2, note = 'executed on chain', updated_ms = $3
             WHERE kind = 'redemption' AND id = $4",
        )
        .bind(if ok { "verified" } else { "mismatch" })
        .bind(text.clone())
        .bind(now_ms() as i64)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
        let e = Entry::by_chain(
            &s.config.org,
            "verify_revocation",
            format!("redemption/{id}"),
            format!("{}: {text}", if ok { "matches" } else { "mismatch" }),
        )
        .with_tx(tx);
        s.decide(conn, None, e).await?;
        Ok(())
    }
}
