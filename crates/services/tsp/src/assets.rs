//! Owners and investors: an asset registered for the owner a trusted
//! registry attested (its description in the vault, its digest on chain),
//! and investors' wallets bound to their DIDs once their presentation
//! showed KYC and jurisdiction credentials.

use crate::Tsp;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use sqlx::AnyConnection;
use tranche_identity::{credential_digest, verify_credential, VerifyOptions};
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{AssetId, AssetKind, Hash, Money, Payload, RegisterAsset, Timestamp};

/// Longest description of an asset, in bytes.
pub const DESCRIPTION_MAX: usize = 4_096;

/// `POST /assets`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAsset {
    /// The asset's id, as the registry's credential names it.
    #[schema(value_type = String)]
    pub asset: AssetId,
    /// `tangible`, `intangible` or `to_be_created` (REC-4).
    #[schema(value_type = String)]
    pub kind: AssetKind,
    /// The asking price AP.
    #[schema(value_type = Object)]
    pub price: Money,
    /// What the asset is, with its documents' references (1 to 4,096
    /// bytes): kept in the vault; only its SHA-256 goes on chain.
    pub description: String,
    /// The ownership credential the asset registry issued you, whose digest
    /// the registry recorded on chain (`tranche vc digest`).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// An asset as the TSP handles it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetView {
    /// The asset.
    pub asset: String,
    /// The owner's DID.
    pub owner: String,
    /// `registering`, `registered`, `refused` (see `note`), `appraised`.
    pub state: String,
    /// Asking price AP, minor units.
    pub price: String,
    /// The latest appraisal on chain, minor units.
    pub appraisal: Option<String>,
    /// The network's appraisal tolerance now, in basis points (SR-6).
    pub tolerance_bps: u16,
    /// Whether the appraisal is within it: an offering may open.
    pub within_policy: Option<bool>,
    /// The registration's transaction.
    pub tx: String,
    /// The last thing that happened, for a person.
    pub note: String,
}

pub(crate) fn refuse(code: ServiceCode, message: impl Into<String>) -> ServiceError {
    ServiceError::new(code, message)
}

/// Whether `appraised` is within `tolerance_bps` of `asked` (SR-6): the
/// ledger's own rule, checked before anything is sent.
pub(crate) fn within(asked: u128, appraised: u128, tolerance_bps: u16) -> bool {
    let diff = asked.abs_diff(appraised);
    match (
        diff.checked_mul(10_000),
        asked.checked_mul(u128::from(tolerance_bps)),
    ) {
        (Some(d), Some(t)) => d <= t,
        _ => false,
    }
}

impl Tsp {
    /// The network's appraisal tolerance now, in basis points (SR-6).
    pub(crate) async fn tolerance(&self) -> Result<u16, ServiceError> {
        Ok(self
            .service
            .node
            .policy()
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .appraisal_tolerance_bps)
    }

    /// Registers `new` for the caller, who must hold the ownership
    /// credential the chain's ownership record names.
    pub async fn register_asset(
        &self,
        who: &Principal,
        new: NewAsset,
    ) -> Result<AssetView, ServiceError> {
        who.require(crate::OWNERSHIP)?;
        if new.description.is_empty() || new.description.len() > DESCRIPTION_MAX {
            return Err(refuse(
                ServiceCode::BadRequest,
                format!("a description is 1 to {DESCRIPTION_MAX} bytes"),
            ));
        }
        if new.price.minor.0 == 0 {
            return Err(refuse(
                ServiceCode::BadRequest,
                "the asking price must be above zero",
            ));
        }
        let s = &self.service;
        let trusted = s.config.trusted_issuers.clone();
        let none = |_: &str| None;
        let vc = verify_credential(
            &new.credential,
            &VerifyOptions {
                now: Timestamp(now_ms()),
                trusted_issuers: Some(&trusted),
                status_lists: &none,
            },
        )
        .map_err(|e| {
            refuse(
                ServiceCode::Forbidden,
                format!("the ownership credential does not verify: {e}"),
            )
        })?;
        let names = vc.claims.get("asset").and_then(|a| a.as_str());
        if !vc.types.iter().any(|t| t == crate::OWNERSHIP)
            || vc.subject.as_deref() != Some(who.did.as_str())
            || names != Some(new.asset.as_str())
        {
            return Err(refuse(
                ServiceCode::Forbidden,
                format!(
                    "the credential is not an ownership credential of {} for your DID",
                    new.asset
                ),
            ));
        }
        let digest = credential_digest(&new.credential)
            .map_err(|e| refuse(ServiceCode::BadRequest, e.to_string()))?;
        let record = s
            .node
            .ownership(new.asset.as_str())
            .await
            .map_err(ServiceError::unavailable)?
            .map(|o| o.data);
        let attested = record
            .as_ref()
            .is_some_and(|o| o.owner.as_str() == who.did && o.credential == Hash(digest));
        if !attested {
            return Err(refuse(
                ServiceCode::Forbidden,
                format!(
                    "the chain shows no registry's record of this credential for {} (ST-6); have the registry record it (record_ownership with tranche vc digest)",
                    new.asset
                ),
            ));
        }
        let mut w = s.db.write().await?;
        if let Some(v) = self.asset(&mut w.tx, new.asset.as_str()).await? {
            if v.owner == who.did {
                return Ok(v);
            }
            return Err(refuse(
                ServiceCode::Conflict,
                format!("{} is registered already", new.asset),
            ));
        }
        // The description is the owner's: in the vault, its digest on chain.
        s.vault
            .put_in(
                &mut w.tx,
                &who.did,
                &format!("asset:{}", new.asset),
                new.description.as_bytes(),
                &[],
            )
            .await?;
        let description = Hash(sha2::Sha256::digest(new.description.as_bytes()).into());
        let payload = Payload::RegisterAsset(RegisterAsset {
            asset: new.asset.clone(),
            owner: who.did.parse().map_err(|_| {
                refuse(
                    ServiceCode::BadRequest,
                    "your DID is not one the chain takes",
                )
            })?,
            kind: new.kind,
            description,
            price: new.price.clone(),
        });
        let entry = Entry {
            actor: who.did.clone(),
            authority: vc.id.clone().unwrap_or_else(|| crate::OWNERSHIP.into()),
            action: "register_asset".into(),
            subject: format!("asset/{}", new.asset),
            decision: format!("registering at {}", new.price),
            reason: None,
            tx: None,
        };
        let (nonce, hash) = s.decide_tx(&mut w.tx, payload, entry).await?;
        sqlx::query(
            "INSERT INTO tsp_assets (asset, owner, kind, price, description_digest, credential_digest,
                nonce, tx, state, note, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'registering', 'sent', $9)",
        )
        .bind(new.asset.to_string())
        .bind(who.did.clone())
        .bind(serde_json::to_string(&new.kind).expect("a kind serializes"))
        .bind(serde_json::to_string(&new.price).expect("money serializes"))
        .bind(description.to_hex())
        .bind(hex::encode(digest))
        .bind(nonce as i64)
        .bind(hash.to_hex())
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?;
        let view = self
            .asset(&mut w.tx, new.asset.as_str())
            .await?
            .expect("just written");
        w.commit().await?;
        Ok(view)
    }

    /// The asset as the TSP holds it, with the chain's appraisal and the
    /// network's tolerance.
    pub(crate) async fn asset(
        &self,
        conn: &mut AnyConnection,
        asset: &str,
    ) -> Result<Option<AssetView>, ServiceError> {
        let row: Option<(String, String, String, String, String)> =
            sqlx::query_as("SELECT owner, state, price, tx, note FROM tsp_assets WHERE asset = $1")
                .bind(asset.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let Some((owner, state, price, tx, note)) = row else {
            return Ok(None);
        };
        let price: Money = serde_json::from_str(&price)
            .map_err(|e| ServiceError::internal("an asset's price", e))?;
        let s = &self.service;
        let tolerance = self.tolerance().await?;
        let appraisal = s
            .node
            .asset(asset)
            .await
            .map_err(ServiceError::unavailable)?
            .and_then(|a| a.data.appraisal);
        Ok(Some(AssetView {
            asset: asset.to_string(),
            owner,
            state,
            price: price.minor.0.to_string(),
            within_policy: appraisal
                .as_ref()
                .map(|a| within(price.minor.0, a.minor.0, tolerance)),
            appraisal: appraisal.map(|a| a.minor.0.to_string()),
            tolerance_bps: tolerance,
            tx,
            note,
        }))
    }

    /// Binds the wallet of `payload` (a `register_wallet` payload the
    /// person made with `tranche did bind-wallet`) to the caller's DID, once
    /// their presentation showed KYC and jurisdiction credentials.
    pub async fn bind_wallet(
        &self,
        who: &Principal,
        payload: Payload,
    ) -> Result<serde_json::Value, ServiceError> {
        for role in crate::INVESTOR {
            who.require(role)?;
        }
        let Payload::RegisterWallet(binding) = payload else {
            return Err(refuse(
                ServiceCode::BadRequest,
                "the body is the register_wallet payload `tranche did bind-wallet` writes",
            ));
        };
        if binding.did.as_str() != who.did {
            return Err(refuse(
                ServiceCode::Forbidden,
                "the binding is for another DID than the one you logged in with",
            ));
        }
        let s = &self.service;
        let wallet = binding.wallet.to_string();
        // Bound on chain already (through another TSP, or before this
        // service's database): nothing to send.
        let on_chain = s
            .node
            .wallet(&binding.wallet)
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .did;
        match on_chain {
            Some(did) if did.as_str() == who.did => {
                return Ok(serde_json::json!({"wallet": wallet, "did": who.did, "state": "bound"}))
            }
            Some(_) => {
                return Err(refuse(
                    ServiceCode::Conflict,
                    "that wallet is bound to another DID on chain",
                ))
            }
            None => {}
        }
        let mut w = s.db.write().await?;
        let existing: Option<(String, String, String)> =
            sqlx::query_as("SELECT did, tx, state FROM tsp_wallets WHERE wallet = $1")
                .bind(wallet.clone())
                .fetch_optional(&mut *w.tx)
                .await?;
        if let Some((did, tx, state)) = existing {
            if did == who.did {
                return Ok(
                    serde_json::json!({"wallet": wallet, "did": did, "tx": tx, "state": state}),
                );
            }
            return Err(refuse(
                ServiceCode::Conflict,
                "that wallet was bound for another DID",
            ));
        }
        let entry = Entry {
            actor: who.did.clone(),
            authority: crate::INVESTOR.join("+"),
            action: "bind_wallet".into(),
            subject: format!("wallet/{wallet}"),
            decision: "binding".into(),
            reason: None,
            tx: None,
        };
        let (nonce, hash) = s
            .decide_tx(&mut w.tx, Payload::RegisterWallet(binding), entry)
            .await?;
        sqlx::query(
            "INSERT INTO tsp_wallets (wallet, did, nonce, tx, state, at_ms)
             VALUES ($1, $2, $3, $4, 'binding', $5)",
        )
        .bind(wallet.clone())
        .bind(who.did.clone())
        .bind(nonce as i64)
        .bind(hash.to_hex())
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(
            serde_json::json!({"wallet": wallet, "did": who.did, "tx": hash.to_hex(), "state": "binding"}),
        )
    }
}
