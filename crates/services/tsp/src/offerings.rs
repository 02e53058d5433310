//! Offerings: opened by the TSP's operators only for an asset it registered
//! whose appraisal is within the network's policy (SR-6), and followed to
//! the end — the close, the issuance the TSP verifies on chain (SR-1), and
//! the release of the proceeds to the owner.

use crate::assets::refuse;
use crate::Tsp;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tranche_api::node::OfferingView;
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{
    AssetId, Date, Money, OpenOffering, OrgId, Payload, RequestId, Timestamp, TokenId, TokenRules,
    Units,
};

/// The longest subscription window, in seconds: 90 days.
pub const WINDOW_SECS_MAX: u64 = 90 * 86_400;

/// `POST /offerings`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOffering {
    /// The offering's id.
    #[schema(value_type = String)]
    pub offering: RequestId,
    /// The asset, registered through this service.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// The token to issue.
    #[schema(value_type = String)]
    pub token: TokenId,
    /// The unit price SP; AP / SP whole tokens are offered.
    #[schema(value_type = Object)]
    pub unit_price: Money,
    /// Units offered.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The fewest units one subscription takes.
    #[schema(value_type = String)]
    pub min_units: Units,
    /// The most units one investor takes (0: no limit).
    #[schema(value_type = String)]
    pub max_units: Units,
    /// Below this many units subscribed, everyone is refunded.
    #[schema(value_type = String)]
    pub soft_cap: Units,
    /// How long subscriptions are taken from now, in seconds (1 to 90 days).
    pub window_secs: u64,
    /// The issuer who issues it.
    #[schema(value_type = String)]
    pub issuer: OrgId,
    /// The escrow bank that holds the money.
    #[schema(value_type = String)]
    pub bank: OrgId,
    /// The bank's deposit token subscriptions are paid in.
    #[schema(value_type = String)]
    pub cash_token: TokenId,
    /// The token's issue date (L-3).
    #[schema(value_type = String)]
    pub issue_date: Date,
    /// Its expiry date (L-3).
    #[schema(value_type = String)]
    pub expiry_date: Date,
    /// Its compliance rules.
    #[schema(value_type = Object)]
    pub rules: TokenRules,
    /// Every allocation's lock-up: the units an investor is issued cannot
    /// move before this day (F5-6 terms). None if left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub lockup_until: Option<Date>,
}

/// An offering as the TSP follows it, with the chain's view.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferingStatus {
    /// The offering.
    pub offering: String,
    /// `opening`, `open`, `failed`, `refunded`, `allocated`, `issued`
    /// (verified), `mismatch`, or `released`.
    pub state: String,
    /// The TSP's verification of the issuance (SR-1), once made.
    pub verified: Option<String>,
    /// The operator who opened it.
    pub staff: String,
    /// The opening transaction.
    pub tx: String,
    /// The last thing that happened, for a person.
    pub note: String,
    /// The chain's view: phase, subscriptions, escrow.
    #[schema(value_type = Option<Object>)]
    pub chain: Option<OfferingView>,
}

impl Tsp {
    /// Opens `new` (an operator), if its asset is this TSP's and appraised
    /// within the network's tolerance.
    pub async fn open_offering(
        &self,
        who: &Principal,
        new: NewOffering,
    ) -> Result<OfferingStatus, ServiceError> {
        who.require(crate::OPERATOR)?;
        if !(1..=WINDOW_SECS_MAX).contains(&new.window_secs) {
            return Err(refuse(
                ServiceCode::BadRequest,
                format!("window_secs is 1 to {WINDOW_SECS_MAX}"),
            ));
        }
        let s = &self.service;
        let mut w = s.db.write().await?;
        if let Some(existing) = self.offering(&mut w.tx, new.offering.as_str()).await? {
            return Ok(existing);
        }
        let Some(asset) = self.asset(&mut w.tx, new.asset.as_str()).await? else {
            return Err(refuse(
                ServiceCode::NotFound,
                format!("{} was not registered through this service", new.asset),
            ));
        };
        match asset.within_policy {
            None => {
                return Err(refuse(
                    ServiceCode::Conflict,
                    format!("{} has no appraisal yet; an appraiser records one first (SR-6)", new.asset),
                ))
            }
            Some(false) => {
                return Err(refuse(
                    ServiceCode::Conflict,
                    format!(
                        "{} is appraised at {} against an asking price of {}: more than the network's {} bps apart (SR-6)",
                        new.asset,
                        asset.appraisal.unwrap_or_default(),
                        asset.price,
                        asset.tolerance_bps
                    ),
                ))
            }
            Some(true) => {}
        }
        let opens = now_ms();
        let payload = Payload::OpenOffering(OpenOffering {
            offering: new.offering.clone(),
            asset: new.asset.clone(),
            token: new.token.clone(),
            unit_price: new.unit_price.clone(),
            amount: new.amount,
            min_units: new.min_units,
            max_units: new.max_units,
            soft_cap: new.soft_cap,
            opens: Timestamp(opens),
            closes: Timestamp(opens + new.window_secs * 1_000),
            issuer: new.issuer.clone(),
            bank: new.bank.clone(),
            cash_token: new.cash_token.clone(),
            issue_date: new.issue_date,
            expiry_date: new.expiry_date,
            rules: new.rules.clone(),
            lockup_until: new.lockup_until,
        });
        let terms = serde_json::to_string(&payload).expect("a payload serializes");
        let entry = Entry::by_person(
            who,
            crate::OPERATOR,
            "open_offering",
            format!("offering/{}", new.offering),
            format!(
                "{} units of {} at {}; appraisal within {} bps",
                new.amount, new.token, new.unit_price, asset.tolerance_bps
            ),
        );
        let (nonce, hash) = s.decide_tx(&mut w.tx, payload, entry).await?;
        sqlx::query(
            "INSERT INTO tsp_offerings (offering, asset, token, terms, staff, nonce, tx, state, note, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'opening', 'sent', $8)",
        )
        .bind(new.offering.to_string())
        .bind(new.asset.to_string())
        .bind(new.token.to_string())
        .bind(terms)
        .bind(who.did.clone())
        .bind(nonce as i64)
        .bind(hash.to_hex())
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?;
        let out = self
            .offering(&mut w.tx, new.offering.as_str())
            .await?
            .expect("just written");
        w.commit().await?;
        Ok(out)
    }

    /// The offering as the TSP follows it, with the chain's view.
    pub(crate) async fn offering(
        &self,
        conn: &mut AnyConnection,
        offering: &str,
    ) -> Result<Option<OfferingStatus>, ServiceError> {
        let row: Option<(String, Option<String>, String, String, String)> = sqlx::query_as(
            "SELECT state, verified, staff, tx, note FROM tsp_offerings WHERE offering = $1",
        )
        .bind(offering.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some((state, verified, staff, tx, note)) = row else {
            return Ok(None);
        };
        let chain = self
            .service
            .node
            .offering(offering)
            .await
            .map_err(ServiceError::unavailable)?
            .map(|v| v.data);
        Ok(Some(OfferingStatus {
            offering: offering.to_string(),
            state,
            verified,
            staff,
            tx,
            note,
            chain,
        }))
    }
}
