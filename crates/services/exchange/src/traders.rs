//! Traders (F6-3, F6-11): a person with KYC and jurisdiction credentials
//! is given a wallet on chain, whose key the exchange keeps in its vault,
//! bound to their DID on their signed consent; their balances there and
//! in the exchange's own ledger, which operators credit and debit.

use crate::market::{Asset, Effects};
use crate::Exchange;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tranche_crypto::Keypair;
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{Did, Payload, RegisterWallet, Signature, Units, WalletAddress};

/// Longest movement reference, in bytes.
pub const REFERENCE_MAX: usize = 64;

/// A trader as the exchange keeps them.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TraderView {
    /// Their DID.
    pub did: String,
    /// The exchange's number for them.
    pub trader: u64,
    /// Their wallet on chain (F6-11): deposit security tokens and on-chain
    /// cash by sending them here.
    pub wallet: String,
    /// `awaiting_consent` (sign the binding: `tranche did consent-wallet`),
    /// `binding` (on its way to the chain), `active` or `failed`.
    pub state: String,
    /// The chain's outcome of the binding, once final.
    pub outcome: Option<String>,
    /// What they hold, what open orders and unsettled trades hold of it,
    /// and what is free.
    pub balances: Vec<AccountView>,
}

/// One balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    /// The token or currency: `{"kind":"token","id":"ACME"}` or `{"kind":"currency","id":"USD"}`.
    #[schema(value_type = Object)]
    pub asset: Asset,
    /// Held (on chain for a token, at the exchange for a currency).
    #[schema(value_type = String)]
    pub balance: Units,
    /// Held by open orders and unsettled trades.
    #[schema(value_type = String)]
    pub held: Units,
    /// Free to trade or withdraw.
    #[schema(value_type = String)]
    pub free: Units,
}

/// `PUT /traders/me/wallet`: the trader's consent to binding the wallet
/// the exchange gave them to their DID, as `tranche did consent-wallet`
/// writes it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletConsent {
    /// The wallet.
    #[schema(value_type = String)]
    pub wallet: WalletAddress,
    /// Their DID.
    #[schema(value_type = String)]
    pub did: Did,
    /// The DID key's signature over the binding (domain `did-control`).
    #[schema(value_type = String)]
    pub did_signature: Signature,
}

/// `POST /accounts/credits` and `/accounts/debits` (operators): money or
/// crypto that reached or left the trader by a bank transfer or a crypto
/// transaction, which this API stands for.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Movement {
    /// The trader's DID.
    pub did: String,
    /// The currency's code, one the exchange quotes (USD, BTC, ...).
    pub currency: String,
    /// Minor units (cents, satoshi, wei).
    #[schema(value_type = String)]
    pub amount: Units,
    /// The bank's or the blockchain's reference: the same reference twice
    /// moves money once.
    pub reference: String,
}

type TraderRow = (String, i64, String, String, Option<String>);

impl Exchange {
    /// Makes the caller a trader (again: the same), with a new wallet whose
    /// key goes into the vault.
    pub async fn open_trader(&self, who: &Principal) -> Result<TraderView, ServiceError> {
        for c in crate::TRADER {
            who.require(c)?;
        }
        let s = &self.service;
        // Where they live, for the AML policy's blocked jurisdictions;
        // the latest credential shown counts.
        let country = who
            .country()
            .map(tranche_types::CountryCode::new)
            .transpose()
            .map_err(|e| ServiceError::new(ServiceCode::BadRequest, e.to_string()))?;
        let mut w = s.db.write().await?;
        let known: Option<(i64,)> = sqlx::query_as("SELECT id FROM ex_traders WHERE did = $1")
            .bind(who.did.clone())
            .fetch_optional(&mut *w.tx)
            .await?;
        if known.is_none() {
            let key = Arc::new(Keypair::generate(&mut tranche_crypto::rand_core::OsRng));
            let (next,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM ex_traders")
                .fetch_one(&mut *w.tx)
                .await?;
            s.vault
                .put_in(&mut w.tx, &who.did, "wallet-key", key.seed().as_ref(), &[])
                .await?;
            sqlx::query(
                "INSERT INTO ex_traders (did, id, wallet, state, opened_ms, country) VALUES ($1, $2, $3, 'awaiting_consent', $4, $5)",
            )
            .bind(who.did.clone())
            .bind(next)
            .bind(key.address().to_string())
            .bind(now_ms() as i64)
            .bind(country.map(|c| c.to_string()))
            .execute(&mut *w.tx)
            .await?;
            tranche_service::audit::append(
                &mut w.tx,
                now_ms(),
                Entry::by_person(
                    who,
                    crate::TRADER[0],
                    "open_trader",
                    format!("trader/{next}"),
                    format!("wallet {} given", key.address()),
                ),
            )
            .await?;
            w.commit().await?;
            self.market()
                .add_trader(&who.did, next as u64, key, false, country);
        } else if country.is_some() {
            sqlx::query("UPDATE ex_traders SET country = $1 WHERE did = $2")
                .bind(country.map(|c| c.to_string()))
                .bind(who.did.clone())
                .execute(&mut *w.tx)
                .await?;
            w.commit().await?;
            if let Some(t) = self.market().traders.get_mut(&who.did) {
                t.country = country;
            }
        } else {
            drop(w);
        }
        self.trader(&who.did).await
    }

    /// Binds the caller's wallet to their DID on their consent.
    pub async fn bind_wallet(
        &self,
        who: &Principal,
        c: WalletConsent,
    ) -> Result<TraderView, ServiceError> {
        let s = &self.service;
        if c.did.as_str() != who.did {
            return Err(ServiceError::new(
                ServiceCode::Forbidden,
                "the consent is for another DID than your session's",
            ));
        }
        let key = {
            let m = self.market();
            let t = m.traders.get(&who.did).ok_or_else(|| {
                ServiceError::new(
                    ServiceCode::NotFound,
                    "you are not a trader here yet: POST /traders first",
                )
            })?;
            if t.wallet != c.wallet {
                return Err(ServiceError::new(
                    ServiceCode::BadRequest,
                    format!(
                        "the consent is for wallet {}; yours here is {}",
                        c.wallet, t.wallet
                    ),
                ));
            }
            Arc::clone(&t.key)
        };
        let message = tranche_ledger::Ledger::binding_message(&c.wallet, &c.did);
        let did_key = tranche_ledger::Ledger::did_key(&c.did)
            .map_err(|r| ServiceError::new(ServiceCode::BadRequest, r.message))?;
        if tranche_crypto::verify(
            &did_key,
            tranche_crypto::Domain::DidControl,
            &s.chain_id,
            &message,
            &c.did_signature,
        )
        .is_err()
        {
            return Err(ServiceError::new(
                ServiceCode::BadRequest,
                "did_signature is not your DID key's signature over the binding of this wallet on this chain (tranche did consent-wallet makes it)",
            ));
        }
        let mut w = s.db.write().await?;
        let (state,): (String,) = sqlx::query_as("SELECT state FROM ex_traders WHERE did = $1")
            .bind(who.did.clone())
            .fetch_one(&mut *w.tx)
            .await?;
        if state == "awaiting_consent" || state == "failed" {
            let payload = Payload::RegisterWallet(RegisterWallet {
                wallet: c.wallet,
                did: c.did.clone(),
                wallet_key: key.public_key(),
                wallet_signature: key.sign(
                    tranche_crypto::Domain::WalletBinding,
                    &s.chain_id,
                    &message,
                ),
                did_signature: c.did_signature,
            });
            let entry = Entry::by_person(
                who,
                crate::TRADER[0],
                "bind_wallet",
                format!("wallet/{}", c.wallet),
                "binding sent".into(),
            );
            let (nonce, _) = s.decide_tx(&mut w.tx, payload, entry).await?;
            sqlx::query("UPDATE ex_traders SET state = 'binding', nonce = $1, outcome = NULL WHERE did = $2")
                .bind(nonce as i64)
                .bind(who.did.clone())
                .execute(&mut *w.tx)
                .await?;
            w.commit().await?;
            s.send_soon();
        } else {
            drop(w);
        }
        self.trader(&who.did).await
    }

    /// Trader `did` with their balances.
    pub async fn trader(&self, did: &str) -> Result<TraderView, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let r: Option<TraderRow> =
            sqlx::query_as("SELECT did, id, wallet, state, outcome FROM ex_traders WHERE did = $1")
                .bind(did.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let r = r.ok_or_else(|| {
            ServiceError::new(
                ServiceCode::NotFound,
                "you are not a trader here yet: POST /traders first",
            )
        })?;
        let balances = self.balances(did);
        Ok(TraderView {
            did: r.0,
            trader: r.1 as u64,
            wallet: r.2,
            state: r.3,
            outcome: r.4,
            balances,
        })
    }

    /// Every trader (staff), oldest first, without balances.
    pub async fn traders(&self) -> Result<Vec<TraderView>, ServiceError> {
        let mut conn = self.service.db.pool().acquire().await?;
        let rows: Vec<TraderRow> = sqlx::query_as(
            "SELECT did, id, wallet, state, outcome FROM ex_traders ORDER BY id LIMIT 1000",
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TraderView {
                did: r.0,
                trader: r.1 as u64,
                wallet: r.2,
                state: r.3,
                outcome: r.4,
                balances: Vec::new(),
            })
            .collect())
    }

    fn balances(&self, did: &str) -> Vec<AccountView> {
        let m = self.market();
        let mut assets: Vec<Asset> = m.quotes().into_iter().map(|(a, _)| a).collect();
        if let Some(t) = m.traders.get(did) {
            for ((w, token), _) in m.chain.iter() {
                if *w == t.wallet {
                    assets.push(Asset::Token(token.clone()));
                }
            }
        }
        assets.sort();
        assets.dedup();
        assets
            .into_iter()
            .map(|a| m.account(did, a))
            .filter(|v| !v.balance.is_zero() || !v.held.is_zero())
            .collect()
    }

    /// Credits (`credit`) or debits a trader's account, once per reference.
    pub async fn move_cash(
        &self,
        who: &Principal,
        credit: bool,
        mv: Movement,
    ) -> Result<AccountView, ServiceError> {
        who.require(crate::OPERATOR)?;
        let bad = |m: String| ServiceError::new(ServiceCode::BadRequest, m);
        if mv.reference.is_empty()
            || mv.reference.len() > REFERENCE_MAX
            || mv.reference.chars().any(char::is_control)
        {
            return Err(bad(format!(
                "reference is 1 to {REFERENCE_MAX} printable characters"
            )));
        }
        if mv.amount.is_zero() {
            return Err(bad("amount must be at least 1".into()));
        }
        if !self.policy.currencies.contains(&mv.currency) {
            return Err(bad(format!(
                "{} is not a currency this exchange keeps; it keeps {:?}",
                mv.currency, self.policy.currencies
            )));
        }
        let s = &self.service;
        let mut w = s.db.write().await?;
        let known: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT did, currency, amount, kind FROM ex_movements WHERE reference = $1",
        )
        .bind(mv.reference.clone())
        .fetch_optional(&mut *w.tx)
        .await?;
        let kind = if credit { "credit" } else { "debit" };
        let asset = Asset::Currency(mv.currency.clone());
        if let Some(k) = known {
            drop(w);
            if k != (
                mv.did.clone(),
                mv.currency.clone(),
                mv.amount.to_string(),
                kind.to_string(),
            ) {
                return Err(ServiceError::new(
                    ServiceCode::Conflict,
                    format!("reference {} was used for another movement", mv.reference),
                ));
            }
            let m = self.market();
            return Ok(m.account(&mv.did, asset));
        }
        let mut fx = Effects::default();
        let view = {
            let mut m = self.market();
            if !m.traders.contains_key(&mv.did) {
                return Err(ServiceError::new(
                    ServiceCode::NotFound,
                    format!("{} is not a trader here", mv.did),
                ));
            }
            m.adjust_cash(&mv.did, &mv.currency, credit, mv.amount.0, &mut fx)
                .map_err(|r| {
                    ServiceError::new(ServiceCode::Refused, format!("{}: {}", r.code, r.message))
                })?;
            m.account(&mv.did, asset)
        };
        fx.audit.push(Entry::by_person(
            who,
            crate::OPERATOR,
            kind,
            format!("account/{}/{}", mv.did, mv.currency),
            format!("{} {} (reference {})", mv.amount, mv.currency, mv.reference),
        ));
        sqlx::query(
            "INSERT INTO ex_movements (reference, did, currency, amount, kind, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(mv.reference.clone())
        .bind(mv.did.clone())
        .bind(mv.currency.clone())
        .bind(mv.amount.to_string())
        .bind(kind)
        .bind(now_ms() as i64)
        .execute(&mut *w.tx)
        .await?;
        // Memory moved ahead of the database: a write that fails now must
        // not leave money recorded in one and not the other.
        if fx.write(self, &mut w.tx).await.is_err() || w.commit().await.is_err() {
            crate::fatal("an account movement could not be written");
        }
        Ok(view)
    }
}
