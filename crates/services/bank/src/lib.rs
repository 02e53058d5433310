//! The escrow bank as a service: accounts by DID, deposit tokens minted and redeemed 1:1 with the money it holds, offerings' escrow closed, refunded and released to the owner when the ledger permits (F5-3, F5-6, F5-8, REC-8), and statements.
//!
//! The bank's own money ledger stands for its core banking system: its
//! operators credit a deposit through the API when money arrives for a
//! customer, and mark a payout paid when they have sent the money out. The
//! chain carries the rest: each deposit mints the same number of deposit
//! tokens to the customer's wallet; a holder who gives tokens back
//! (`redeem_cash`) is owed the same in money. What the chain's escrow rules
//! permit — closing an offering whose window ended (refunding everyone
//! below the soft cap), releasing the proceeds to the owner once the
//! issuance is complete — the bank's follower sends in the same database
//! transaction as the block that permits it, so a kill -9 at any moment
//! neither loses nor doubles a step.

mod accounts;
mod api;
mod escrow;

pub use accounts::{AccountView, DepositView, NewAccount, NewDeposit, Paid, PayoutView, Statement};
pub use api::router;
pub use escrow::OfferingState;

use anyhow::Context as _;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use tranche_api::node::TokenKindView;
use tranche_service::{now_ms, Migration, Service, ServiceConfig};
use tranche_types::{Currency, CurrencyKind, IssueCashToken, Payload, TokenId};

/// The bank's tables.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 100,
    name: "bank",
    sql: "
CREATE TABLE bank_token (token TEXT PRIMARY KEY, tx TEXT NOT NULL);
CREATE TABLE bank_accounts (
    did TEXT PRIMARY KEY, wallet TEXT NOT NULL UNIQUE, opened_ms BIGINT NOT NULL);
CREATE TABLE bank_deposits (
    reference TEXT PRIMARY KEY, did TEXT NOT NULL, amount TEXT NOT NULL, staff TEXT NOT NULL,
    nonce BIGINT NOT NULL, tx TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT,
    height BIGINT, at_ms BIGINT NOT NULL);
CREATE INDEX bank_deposits_by_did ON bank_deposits (did, at_ms);
CREATE INDEX bank_deposits_by_nonce ON bank_deposits (nonce);
CREATE TABLE bank_payouts (
    tx TEXT PRIMARY KEY, did TEXT NOT NULL, wallet TEXT NOT NULL, amount TEXT NOT NULL,
    height BIGINT NOT NULL, state TEXT NOT NULL, reference TEXT, staff TEXT, paid_ms BIGINT);
CREATE INDEX bank_payouts_by_did ON bank_payouts (did, height);
CREATE INDEX bank_payouts_by_state ON bank_payouts (state, height);
CREATE TABLE bank_offerings (
    offering TEXT PRIMARY KEY, asset TEXT NOT NULL, closes_ms BIGINT NOT NULL,
    state TEXT NOT NULL, pending_nonce BIGINT, batches BIGINT NOT NULL,
    release_tx TEXT, note TEXT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE INDEX bank_offerings_by_state ON bank_offerings (state, closes_ms);
",
}];

/// The staff role that credits deposits and marks payouts paid.
pub const OPERATOR: &str = "staff:operator";
/// Staff roles that read accounts, payouts and offerings.
pub const READERS: &[&str] = &["staff:operator", "staff:auditor"];
/// The credential a person shows to open an account (from a trusted issuer).
pub const KYC: &str = "KycCredential";

/// An example config, shown by `tranche bank --help`.
pub const EXAMPLE_CONFIG: &str = r#"[service]
org = "devnet-bank"                   # the organisation, as the chain knows it (role EscrowBank)
key_file = "keys/devnet-bank.key"     # its key: the one the chain holds for org
password_file = "password"            # else TRANCHE_PASSWORD, else a prompt
node = "http://127.0.0.1:27101"       # its node's API (https:// with node_ca = "ca.pem")
listen = "127.0.0.1:28102"            # where this service's API listens
data_dir = "bank-data"                # SQLite database and vault key
trusted_issuers = ["did:key:z6Mk..."] # whose KYC credentials open accounts
# database_url = "postgres://bank@db.internal/bank"   # PostgreSQL instead of SQLite
# tls = { cert = "bank.crt", key = "bank.key" }       # serve HTTPS

[bank]
token = "USD-DEP"                     # its deposit token on chain (created on first start)
currency = "USD"                      # the money it holds, ISO 4217
"#;

/// The `[bank]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankSection {
    /// The deposit token's id on chain.
    pub token: String,
    /// The fiat currency it holds (ISO 4217).
    pub currency: String,
}

/// The bank service's config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankConfig {
    /// What every service has.
    pub service: ServiceConfig,
    /// The bank's own settings.
    pub bank: BankSection,
}

impl BankConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<BankConfig> {
        let mut c: BankConfig = tranche_service::config::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.service = c.service.resolve(base)?;
        c.bank.parsed()?;
        Ok(c)
    }
}

impl BankSection {
    fn parsed(&self) -> anyhow::Result<(TokenId, Currency)> {
        let token: TokenId = self
            .token
            .parse()
            .map_err(|e| anyhow::anyhow!("bank.token {:?}: {e}", self.token))?;
        let currency = Currency::known(&self.currency)
            .ok()
            .filter(|c| c.kind() == CurrencyKind::Fiat)
            .with_context(|| {
                format!(
                    "bank.currency {:?} is not a fiat currency this network knows (e.g. USD, EUR, KRW)",
                    self.currency
                )
            })?;
        Ok((token, currency))
    }
}

/// The escrow bank's service.
#[derive(Debug)]
pub struct Bank {
    /// The kit.
    pub service: Arc<Service>,
    /// Its deposit token.
    pub token: TokenId,
    /// The money it holds.
    pub currency: Currency,
}

impl Bank {
    /// Opens the bank service of `config`; on the first start, records the
    /// creation of its deposit token.
    pub async fn open(config: BankConfig) -> anyhow::Result<Arc<Bank>> {
        let (token, currency) = config.bank.parsed()?;
        let service = Service::open(config.service, MIGRATIONS).await?;
        Bank::with_service(service, token, currency).await
    }

    /// The bank on an opened `service`.
    pub async fn with_service(
        service: Arc<Service>,
        token: TokenId,
        currency: Currency,
    ) -> anyhow::Result<Arc<Bank>> {
        let bank = Bank {
            service,
            token,
            currency,
        };
        bank.ensure_token().await?;
        Ok(Arc::new(bank))
    }

    /// Checks the deposit token on chain is this bank's, in its currency; if
    /// the chain has none, records its creation (once).
    async fn ensure_token(&self) -> anyhow::Result<()> {
        let s = &self.service;
        let on_chain = s
            .node
            .token(self.token.as_str())
            .await
            .context("asking the node for the deposit token")?;
        if let Some(t) = on_chain {
            let t = t.data.token;
            let ours = t.kind == TokenKindView::Cash
                && t.issuer.as_str() == s.config.org
                && t.currency.as_ref() == Some(&self.currency);
            if !ours {
                anyhow::bail!(
                    "token {} on chain is not {}'s {} deposit token; choose another bank.token",
                    self.token,
                    s.config.org,
                    self.currency.code()
                );
            }
            return Ok(());
        }
        let mut w = s.db.write().await?;
        let recorded: Option<(String,)> =
            sqlx::query_as("SELECT tx FROM bank_token WHERE token = $1")
                .bind(self.token.to_string())
                .fetch_optional(&mut *w.tx)
                .await?;
        if recorded.is_none() {
            let entry = tranche_service::audit::Entry {
                actor: s.config.org.clone(),
                authority: "config".into(),
                action: "issue_deposit_token".into(),
                subject: self.token.to_string(),
                decision: format!("created in {}", self.currency.code()),
                reason: None,
                tx: None,
            };
            let payload = Payload::IssueCashToken(IssueCashToken {
                token: self.token.clone(),
                currency: self.currency.clone(),
            });
            let (_, hash) = s
                .decide_tx(&mut w.tx, payload, entry)
                .await
                .map_err(anyhow::Error::msg)?;
            sqlx::query("INSERT INTO bank_token (token, tx) VALUES ($1, $2)")
                .bind(self.token.to_string())
                .bind(hash.to_hex())
                .execute(&mut *w.tx)
                .await?;
            tracing::info!(token = %self.token, at_ms = now_ms(), "deposit token recorded for creation");
        }
        w.commit().await?;
        Ok(())
    }

    /// Runs the service until SIGINT or SIGTERM.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let router = router(&self);
        Arc::clone(&self.service)
            .run(
                Arc::clone(&self) as Arc<dyn tranche_service::follower::Apply>,
                router,
            )
            .await
    }
}
