//! The exchange as a service: traders onboarded by presentation with wallets bound to their DIDs, listings taken from the chain, orders checked and reserved before the matching engine, every command journaled before it is acknowledged, the trade ledger in a DBMS, and settlement on chain (F6-2..F6-7, F6-11, SR-2).
//!
//! A trader logs in with a presentation (KYC and jurisdiction credentials
//! from issuers the exchange trusts) and is given a wallet on chain whose
//! key the exchange keeps in its vault; the trader's signed consent binds
//! it to their DID. Security tokens and on-chain cash (a CBDC, a bank's
//! deposit token) are deposited by ordinary transfers to that wallet; fiat
//! and crypto balances live in the exchange's own ledger, credited and
//! debited by its operators (standing for bank transfers and crypto
//! deposits).
//!
//! The follower lists a token once the exchange's own check shows its
//! issuance complete (issued equals requested, SR-2), halts its books while
//! the token is paused and delists it when it is revoked or expires. An
//! order is checked before it reaches the engine: the trader's free
//! balance (on-chain balance or exchange account, less what open orders
//! and unsettled trades hold), the AML limits, and the token's rules for
//! the trader's side through the node's holder check, so a buyer the
//! ledger would refuse never matches. The sequencer runs accepted commands
//! through the pure matching engine and writes them, with the orders and
//! trades they make and each trade's settlement transaction, in one
//! database transaction before it answers; after a kill -9 the books are
//! rebuilt from that journal. Each trade settles on chain as one atomic
//! delivery-versus-payment transaction the exchange signs with the
//! approvals of both traders' wallet keys; legs in fiat or crypto move in
//! the exchange's ledger exactly when the chain leg is final.

mod api;
mod effects;
mod follow;
mod keys;
mod market;
mod orders;
mod records;
mod reports;
mod restore;
mod settle;
mod traders;
mod travel;
mod ws;

pub use api::router;
pub use keys::{ApiKeyView, NewApiKey};
pub use market::{Asset, BookView, ListingView};
pub use orders::OrderRequest;
pub use records::{OrderView, TradeView};
pub use traders::{AccountView, Movement, TraderView, WalletConsent};
pub use travel::TravelRuleReceipt;
pub use ws::TradeTick;

use anyhow::Context as _;
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tranche_service::{Migration, Service, ServiceConfig};
use tranche_types::{Currency, CurrencyKind, TokenId, Units};

/// The exchange's tables.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 100,
    name: "exchange",
    sql: "
CREATE TABLE ex_traders (
    did TEXT PRIMARY KEY, id BIGINT NOT NULL UNIQUE, wallet TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL, nonce BIGINT, outcome TEXT, opened_ms BIGINT NOT NULL);
CREATE INDEX ex_traders_by_nonce ON ex_traders (nonce);
CREATE TABLE ex_cash (
    did TEXT NOT NULL, currency TEXT NOT NULL, units TEXT NOT NULL, PRIMARY KEY (did, currency));
CREATE TABLE ex_movements (
    reference TEXT PRIMARY KEY, did TEXT NOT NULL, currency TEXT NOT NULL, amount TEXT NOT NULL,
    kind TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE INDEX ex_movements_by_did ON ex_movements (did, at_ms);
CREATE TABLE ex_wallet_balances (
    wallet TEXT NOT NULL, token TEXT NOT NULL, units TEXT NOT NULL, PRIMARY KEY (wallet, token));
CREATE TABLE ex_listings (
    token TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT NOT NULL, height BIGINT NOT NULL,
    tx TEXT, expiry TEXT, at_ms BIGINT NOT NULL);
CREATE TABLE ex_listing_history (
    token TEXT NOT NULL, height BIGINT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    tx TEXT, PRIMARY KEY (token, height, status));
CREATE TABLE ex_journal (seq BIGINT PRIMARY KEY, entry TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE TABLE ex_orders (
    id BIGINT PRIMARY KEY, did TEXT NOT NULL, client_id TEXT, instrument TEXT NOT NULL,
    side TEXT NOT NULL, price BIGINT, quantity BIGINT NOT NULL, open BIGINT NOT NULL,
    filled BIGINT NOT NULL, tif TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, message TEXT,
    reserved TEXT NOT NULL, at_ms BIGINT NOT NULL);
CREATE INDEX ex_orders_by_did ON ex_orders (did, id);
CREATE INDEX ex_orders_by_state ON ex_orders (state);
CREATE UNIQUE INDEX ex_orders_by_client_id ON ex_orders (did, client_id);
CREATE TABLE ex_trades (
    id BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, instrument TEXT NOT NULL, token TEXT NOT NULL,
    quote TEXT NOT NULL, price BIGINT NOT NULL, quantity BIGINT NOT NULL, value TEXT NOT NULL,
    buyer TEXT NOT NULL, seller TEXT NOT NULL, buy_order BIGINT NOT NULL, sell_order BIGINT NOT NULL,
    fee_buyer TEXT NOT NULL, fee_seller TEXT NOT NULL, state TEXT NOT NULL, nonce BIGINT NOT NULL,
    tx TEXT NOT NULL, height BIGINT, reason TEXT, message TEXT);
CREATE INDEX ex_trades_by_nonce ON ex_trades (nonce);
CREATE INDEX ex_trades_by_buyer ON ex_trades (buyer, id);
CREATE INDEX ex_trades_by_seller ON ex_trades (seller, id);
CREATE INDEX ex_trades_by_state ON ex_trades (state);
",
}, Migration {
    version: 101,
    name: "exchange reports",
    sql: "
ALTER TABLE ex_trades ADD COLUMN decided_ms BIGINT;
ALTER TABLE ex_trades ADD COLUMN report_seq BIGINT;
CREATE INDEX ex_trades_unreported ON ex_trades (report_seq, state);
CREATE TABLE ex_reports (
    seq BIGINT PRIMARY KEY, from_ms BIGINT NOT NULL, to_ms BIGINT NOT NULL, hash TEXT NOT NULL,
    body TEXT NOT NULL, pushed BIGINT NOT NULL);
",
}, Migration {
    version: 102,
    name: "traders' API keys",
    sql: "
CREATE TABLE ex_api_keys (
    key TEXT PRIMARY KEY, did TEXT NOT NULL, created_ms BIGINT NOT NULL, revoked_ms BIGINT);
CREATE INDEX ex_api_keys_by_did ON ex_api_keys (did);
",
}, Migration {
    version: 103,
    name: "traders' jurisdictions",
    sql: "
ALTER TABLE ex_traders ADD COLUMN country TEXT;
ALTER TABLE ex_reports ADD COLUMN through_height BIGINT NOT NULL DEFAULT 0;
CREATE TABLE ex_moves (
    height BIGINT NOT NULL, idx BIGINT NOT NULL, tx TEXT NOT NULL, token TEXT NOT NULL,
    from_wallet TEXT, from_did TEXT, to_wallet TEXT NOT NULL, to_did TEXT, amount TEXT NOT NULL,
    kind TEXT NOT NULL, PRIMARY KEY (height, idx));
CREATE INDEX ex_trades_by_tx ON ex_trades (tx);
",
    },
    Migration {
        version: 104,
        name: "travel-rule messages received",
        sql: "
CREATE TABLE ex_travel (
    digest TEXT PRIMARY KEY, sender TEXT NOT NULL, wallet TEXT NOT NULL, token TEXT NOT NULL,
    amount TEXT NOT NULL, received_ms BIGINT NOT NULL);
",
    },
];

/// The credentials a trader shows (from trusted issuers), F6-3.
pub const TRADER: &[&str] = &["KycCredential", "JurisdictionCredential"];
/// The staff role that credits and debits traders' accounts.
pub const OPERATOR: &str = "staff:operator";
/// Staff roles that read every trader, order and trade.
pub const READERS: &[&str] = &["staff:operator", "staff:auditor"];

/// Whether `who` is staff who read every trader's records.
pub(crate) fn is_staff(who: &tranche_service::auth::Principal) -> bool {
    READERS.iter().any(|r| who.roles.iter().any(|x| x == r))
}

/// Stops the process: the books in memory are ahead of the database after
/// a write that failed, and only a start from the database (which
/// rebuilds them from the journal) makes them agree again.
pub(crate) fn fatal(what: &str) -> ! {
    tracing::error!("{what}; stopping so that a restart rebuilds the books from the database");
    std::process::exit(70)
}

/// An example config, shown by `tranche exchange --help`.
pub const EXAMPLE_CONFIG: &str = r#"[service]
org = "devnet-exchange"                  # the organisation, as the chain knows it (role Exchange)
key_file = "keys/devnet-exchange.key"    # its key: the one the chain holds for org
password_file = "password"               # else TRANCHE_PASSWORD, else a prompt
node = "http://127.0.0.1:27103"          # its node's API (https:// with node_ca = "ca.pem")
listen = "127.0.0.1:28103"               # where this service's API listens
data_dir = "exchange-data"               # SQLite database and vault key
trusted_issuers = ["did:key:z6Mk..."]    # whose KYC and jurisdiction credentials admit traders
# database_url = "postgres://exchange@db.internal/exchange"   # PostgreSQL instead of SQLite
# tls = { cert = "exchange.crt", key = "exchange.key" }       # serve HTTPS

[exchange]
currencies = ["USD", "EUR", "KRW", "BTC", "ETH"]   # quotes kept in the exchange's own ledger
quote_tokens = ["DUSD"]        # on-chain quotes: a CBDC, a bank's deposit token, a security token
fee_bps = 10                   # each side's fee on trades quoted in `currencies`, in basis points
order_units_max = "1000000"    # AML limit: the most tokens one order carries
order_value_max = "100000000"  # AML limit: the most one order is worth, in the quote's minor units
eligibility_ttl_ms = 2000      # how long the node's holder check of a trader is reused
report_period_secs = 3600      # a signed report to the regulator every hour (F6-6, F6-8)
# report_url = "https://regulator.example/reports"   # POST each report there, signed
"#;

/// The `[exchange]` table: what is quoted, the fee, and the order limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSection {
    /// Fiat and crypto currencies (USD, EUR, KRW, BTC, ETH, ...) every
    /// listed token is quoted in, settled in the exchange's own ledger.
    #[serde(default)]
    pub currencies: Vec<String>,
    /// On-chain tokens every listed token is quoted in: a CBDC, a bank's
    /// deposit token, or another security token (F6-4).
    #[serde(default)]
    pub quote_tokens: Vec<TokenId>,
    /// Each side's fee, in basis points of the trade's value, on trades
    /// quoted in `currencies`.
    #[serde(default)]
    pub fee_bps: u32,
    /// The most tokens one order carries (AML, F6-1).
    pub order_units_max: Units,
    /// The most one order is worth, in the quote's minor units (AML, F6-1).
    pub order_value_max: Units,
    /// How long the node's answer to a holder check is reused, in ms: a
    /// longer time saves a request per order, a shorter one sees a freeze
    /// or a pause sooner (the chain's check at settlement is the last word).
    #[serde(default = "eligibility_ttl_default")]
    pub eligibility_ttl_ms: u64,
    /// Seconds between reports to the regulator (F6-6, F6-8).
    #[serde(default = "report_period_default")]
    pub report_period_secs: u64,
    /// Where each report is POSTed, signed by the exchange (the
    /// regulator's service), if anywhere.
    #[serde(default)]
    pub report_url: Option<String>,
}

fn eligibility_ttl_default() -> u64 {
    ELIGIBILITY_TTL_MS_DEFAULT
}

/// How long a holder check is reused unless the config says otherwise.
pub const ELIGIBILITY_TTL_MS_DEFAULT: u64 = 2_000;

fn report_period_default() -> u64 {
    REPORT_PERIOD_SECS_DEFAULT
}

/// Seconds between reports unless the config says otherwise: one an hour.
pub const REPORT_PERIOD_SECS_DEFAULT: u64 = 3_600;

/// The exchange service's config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// What every service has.
    pub service: ServiceConfig,
    /// What the exchange quotes and its limits.
    pub exchange: ExchangeSection,
}

/// The most quote currencies and tokens together.
pub const QUOTES_MAX: usize = 16;

impl ExchangeSection {
    /// The currencies, checked.
    pub fn currencies(&self) -> anyhow::Result<Vec<Currency>> {
        self.currencies
            .iter()
            .map(|c| {
                let c =
                    Currency::known(c).map_err(|e| anyhow::anyhow!("exchange.currencies: {e}"))?;
                if c.kind() == CurrencyKind::Cbdc {
                    anyhow::bail!(
                        "exchange.currencies: {} is on chain; list its token in quote_tokens",
                        c.code()
                    );
                }
                Ok(c)
            })
            .collect()
    }

    /// Checks the section.
    pub fn check(&self) -> anyhow::Result<()> {
        self.currencies()?;
        if self.currencies.len() + self.quote_tokens.len() > QUOTES_MAX {
            anyhow::bail!("the exchange quotes at most {QUOTES_MAX} currencies and tokens");
        }
        if self.currencies.is_empty() && self.quote_tokens.is_empty() {
            anyhow::bail!("exchange.currencies or exchange.quote_tokens must name a quote");
        }
        if self.fee_bps > 1_000 {
            anyhow::bail!("exchange.fee_bps is at most 1000 (10%)");
        }
        if self.eligibility_ttl_ms > 60_000 {
            anyhow::bail!("exchange.eligibility_ttl_ms is at most 60000");
        }
        if !(1..=86_400).contains(&self.report_period_secs) {
            anyhow::bail!("exchange.report_period_secs is 1 to 86400");
        }
        if let Some(u) = &self.report_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 512 {
                anyhow::bail!(
                    "exchange.report_url is an http:// or https:// URL of at most 512 bytes"
                );
            }
        }
        if self.order_units_max.is_zero() || self.order_value_max.is_zero() {
            anyhow::bail!("exchange.order_units_max and exchange.order_value_max must be above 0");
        }
        Ok(())
    }
}

impl ExchangeConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<ExchangeConfig> {
        let mut c: ExchangeConfig = tranche_service::config::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.service = c.service.resolve(base)?;
        c.exchange.check()?;
        Ok(c)
    }
}

/// The exchange's service.
#[derive(Debug)]
pub struct Exchange {
    /// The kit.
    pub service: Arc<Service>,
    /// What it quotes, its fee and limits.
    pub policy: ExchangeSection,
    /// The books, balances and holds, in memory; the database has them all.
    pub(crate) market: Mutex<market::Market>,
    /// Commands on their way to the sequencer.
    pub(crate) commands: mpsc::Sender<orders::Pending>,
    /// The sequencer's end, until [`Exchange::run`] starts it.
    queue: Mutex<Option<mpsc::Receiver<orders::Pending>>>,
    /// Holder checks lately answered by the node.
    pub(crate) eligibility: Mutex<orders::EligibilityCache>,
    /// What each commit changed, for the WebSocket's connections.
    pub(crate) updates: tokio::sync::broadcast::Sender<Arc<ws::MarketUpdate>>,
}

impl Exchange {
    /// Opens the exchange service of `config`.
    pub async fn open(config: ExchangeConfig) -> anyhow::Result<Arc<Exchange>> {
        let service = Service::open(config.service, MIGRATIONS).await?;
        Exchange::with_service(service, config.exchange).await
    }

    /// The exchange on an opened `service`: its books rebuilt from the
    /// journal, its balances and holds from the database.
    pub async fn with_service(
        service: Arc<Service>,
        policy: ExchangeSection,
    ) -> anyhow::Result<Arc<Exchange>> {
        policy.check()?;
        let market = market::Market::load(&service, &policy)
            .await
            .context("rebuilding the books from the journal")?;
        let (commands, queue) = mpsc::channel(orders::QUEUE_MAX);
        Ok(Arc::new(Exchange {
            service,
            policy,
            market: Mutex::new(market),
            commands,
            queue: Mutex::new(Some(queue)),
            eligibility: Mutex::new(orders::EligibilityCache::default()),
            updates: ws::channel(),
        }))
    }

    pub(crate) fn market(&self) -> std::sync::MutexGuard<'_, market::Market> {
        // The market's invariants are checked after each command; a panic
        // while it is held stops the sequencer, and the process with it.
        self.market.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the service until SIGINT or SIGTERM: the sequencer, the kit's
    /// tasks and the API. A sequencer that cannot write its journal stops
    /// the service: its books would be ahead of what is durable.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let router = router(&self);
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .context("the exchange runs once")?;
        let mut sequencer = tokio::spawn(Arc::clone(&self).sequence(queue));
        let reporter = tokio::spawn(Arc::clone(&self).report_periodically());
        let service = Arc::clone(&self.service).run(
            Arc::clone(&self) as Arc<dyn tranche_service::follower::Apply>,
            router,
        );
        let ended = tokio::select! {
            ran = service => ran.context("running the exchange service"),
            stopped = &mut sequencer => match stopped {
                Ok(Err(e)) => Err(anyhow::anyhow!("the sequencer stopped: {}", e.message)),
                Ok(Ok(())) => Ok(()),
                Err(e) => Err(anyhow::anyhow!("the sequencer stopped: {e}")),
            },
        };
        sequencer.abort();
        reporter.abort();
        ended
    }
}
