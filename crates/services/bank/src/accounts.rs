//! Customers' accounts: opened by a person with a KYC credential for a
//! wallet bound to their DID on chain; deposits credited by an operator
//! (minting the same in deposit tokens); payouts owed for the tokens a
//! holder redeemed, marked paid by an operator; statements.

use crate::Bank;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tranche_api::client::TransferFilter;
use tranche_service::audit::Entry;
use tranche_service::auth::Principal;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{MintCash, Payload, TransferRecord, Units, WalletAddress};

/// The largest single deposit, in minor units: a bound against typing
/// errors, far above any one investor's subscription.
pub const DEPOSIT_MAX: u128 = 1_000_000_000_000_000;
/// Longest reference, in characters.
pub const REFERENCE_LEN_MAX: usize = 64;
/// Most transfers a statement lists.
pub const STATEMENT_TRANSFERS_MAX: usize = 1_000;

/// `POST /accounts`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// The wallet deposit tokens are minted to: bound to your DID on chain.
    #[schema(value_type = String)]
    pub wallet: WalletAddress,
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    /// The customer's DID.
    pub did: String,
    /// Their wallet.
    pub wallet: String,
    /// When it was opened, ms since 1970.
    pub opened_ms: u64,
}

/// `POST /deposits`: money arrived for a customer.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeposit {
    /// The customer's DID.
    pub did: String,
    /// Minor units of the bank's currency (e.g. cents), as a decimal string.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The core banking system's reference for the incoming payment: the
    /// same reference twice is the same deposit (1 to 64 characters).
    pub reference: String,
}

/// A deposit and its deposit tokens' minting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DepositView {
    /// The payment's reference.
    pub reference: String,
    /// The customer's DID.
    pub did: String,
    /// Minor units.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The operator who credited it.
    pub staff: String,
    /// The minting transaction.
    pub tx: String,
    /// `minting`, `minted` or `failed` (see `outcome`).
    pub state: String,
    /// The chain's outcome, once final.
    pub outcome: Option<String>,
    /// The block that carried the minting.
    pub height: Option<u64>,
    /// When it was credited, ms since 1970.
    pub at_ms: u64,
}

/// Money owed for redeemed deposit tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayoutView {
    /// The redeeming transaction.
    pub tx: String,
    /// The holder's DID.
    pub did: String,
    /// The wallet that redeemed.
    pub wallet: String,
    /// Minor units owed.
    #[schema(value_type = String)]
    pub amount: Units,
    /// The block that carried the redemption.
    pub height: u64,
    /// `owed` or `paid`.
    pub state: String,
    /// The core banking system's reference for the outgoing payment.
    pub reference: Option<String>,
    /// The operator who marked it paid.
    pub staff: Option<String>,
    /// When, ms since 1970.
    pub paid_ms: Option<u64>,
}

/// `POST /payouts/{tx}/paid`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Paid {
    /// The core banking system's reference for the outgoing payment.
    pub reference: String,
}

/// An account's statement.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Statement {
    /// The account.
    pub account: AccountView,
    /// The deposit token.
    pub token: String,
    /// Its balance in the account's wallet now, minor units.
    #[schema(value_type = String)]
    pub balance: Units,
    /// Money credited, newest first.
    pub deposits: Vec<DepositView>,
    /// Money owed or paid out for redeemed tokens, newest first.
    pub payouts: Vec<PayoutView>,
    /// The deposit token's movements in and out of the wallet on chain
    /// (subscriptions into escrow, refunds, proceeds, distributions), oldest
    /// first, at most 1,000.
    #[schema(value_type = Vec<Object>)]
    pub transfers: Vec<TransferRecord>,
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::BadRequest, message)
}

fn units(text: &str, what: &str) -> Result<Units, ServiceError> {
    text.parse().map_err(|_| ServiceError::internal(what, text))
}

/// Checks a reference a person typed.
pub(crate) fn check_reference(r: &str) -> Result<(), ServiceError> {
    let ok = !r.is_empty()
        && r.len() <= REFERENCE_LEN_MAX
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "a reference is 1 to {REFERENCE_LEN_MAX} letters, digits and -_.:/"
        )))
    }
}

pub(crate) async fn account(
    conn: &mut AnyConnection,
    did: &str,
) -> Result<Option<AccountView>, sqlx::Error> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT did, wallet, opened_ms FROM bank_accounts WHERE did = $1")
            .bind(did.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(did, wallet, at)| AccountView {
        did,
        wallet,
        opened_ms: at as u64,
    }))
}

pub(crate) async fn accounts(conn: &mut AnyConnection) -> Result<Vec<AccountView>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT did, wallet, opened_ms FROM bank_accounts ORDER BY opened_ms, did LIMIT 1000",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(did, wallet, at)| AccountView {
            did,
            wallet,
            opened_ms: at as u64,
        })
        .collect())
}

type DepositRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    i64,
);

const DEPOSIT_COLUMNS: &str =
    "reference, did, amount, staff, tx, state, outcome, height, at_ms FROM bank_deposits";

fn deposit_view(r: DepositRow) -> Result<DepositView, ServiceError> {
    Ok(DepositView {
        amount: units(&r.2, "a deposit's amount")?,
        reference: r.0,
        did: r.1,
        staff: r.3,
        tx: r.4,
        state: r.5,
        outcome: r.6,
        height: r.7.map(|h| h as u64),
        at_ms: r.8 as u64,
    })
}

type PayoutRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
);

const PAYOUT_COLUMNS: &str =
    "tx, did, wallet, amount, height, state, reference, staff, paid_ms FROM bank_payouts";

fn payout_view(r: PayoutRow) -> Result<PayoutView, ServiceError> {
    Ok(PayoutView {
        amount: units(&r.3, "a payout's amount")?,
        tx: r.0,
        did: r.1,
        wallet: r.2,
        height: r.4 as u64,
        state: r.5,
        reference: r.6,
        staff: r.7,
        paid_ms: r.8.map(|h| h as u64),
    })
}

pub(crate) async fn payouts(
    conn: &mut AnyConnection,
    state: Option<&str>,
) -> Result<Vec<PayoutView>, ServiceError> {
    let rows: Vec<PayoutRow> = match state {
        Some(s) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PAYOUT_COLUMNS} WHERE state = $1 ORDER BY height, tx LIMIT 1000"
            )))
            .bind(s.to_string())
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PAYOUT_COLUMNS} ORDER BY height, tx LIMIT 1000"
            )))
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.into_iter().map(payout_view).collect()
}

impl Bank {
    /// Opens the caller's account for `wallet`, which the chain must show
    /// bound to their DID. Opening it again for the same wallet answers the
    /// same account; an offering waiting for this owner's account is released.
    pub async fn open_account(
        &self,
        who: &Principal,
        new: NewAccount,
    ) -> Result<AccountView, ServiceError> {
        who.require(crate::KYC)?;
        let s = &self.service;
        let bound = s
            .node
            .wallet(&new.wallet)
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .did;
        if bound.as_ref().map(|d| d.as_str()) != Some(who.did.as_str()) {
            return Err(ServiceError::new(
                ServiceCode::Forbidden,
                format!(
                    "wallet {} is not bound to your DID on chain; have your TSP bind it first (tranche did bind-wallet)",
                    new.wallet
                ),
            ));
        }
        let mut w = s.db.write().await?;
        if let Some(a) = account(&mut w.tx, &who.did).await? {
            if a.wallet == new.wallet.to_string() {
                return Ok(a);
            }
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!("you hold an account for wallet {} already", a.wallet),
            ));
        }
        let taken: Option<(String,)> =
            sqlx::query_as("SELECT did FROM bank_accounts WHERE wallet = $1")
                .bind(new.wallet.to_string())
                .fetch_optional(&mut *w.tx)
                .await?;
        if taken.is_some() {
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                "that wallet belongs to another account",
            ));
        }
        let now = now_ms();
        sqlx::query("INSERT INTO bank_accounts (did, wallet, opened_ms) VALUES ($1, $2, $3)")
            .bind(who.did.clone())
            .bind(new.wallet.to_string())
            .bind(now as i64)
            .execute(&mut *w.tx)
            .await?;
        let e = Entry::by_person(
            who,
            crate::KYC,
            "open_account",
            who.did.clone(),
            format!("opened for wallet {}", new.wallet),
        );
        s.decide(&mut w.tx, None, e).await?;
        self.release_awaiting(&mut w.tx, &who.did, &new.wallet)
            .await?;
        w.commit().await?;
        Ok(AccountView {
            did: who.did.clone(),
            wallet: new.wallet.to_string(),
            opened_ms: now,
        })
    }

    /// Credits a deposit (an operator, for money that arrived) and records
    /// the minting of as many deposit tokens to the customer's wallet. The
    /// same reference again answers the same deposit.
    pub async fn deposit(
        &self,
        who: &Principal,
        new: NewDeposit,
    ) -> Result<DepositView, ServiceError> {
        who.require(crate::OPERATOR)?;
        check_reference(&new.reference)?;
        if new.amount.is_zero() || new.amount.0 > DEPOSIT_MAX {
            return Err(bad(format!("a deposit is 1 to {DEPOSIT_MAX} minor units")));
        }
        let s = &self.service;
        let mut w = s.db.write().await?;
        let existing: Option<DepositRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DEPOSIT_COLUMNS} WHERE reference = $1"
        )))
        .bind(new.reference.clone())
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(r) = existing {
            let d = deposit_view(r)?;
            if d.did == new.did && d.amount == new.amount {
                return Ok(d);
            }
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                format!(
                    "reference {} was credited already, for another customer or amount",
                    new.reference
                ),
            ));
        }
        let Some(a) = account(&mut w.tx, &new.did).await? else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                format!("{} holds no account here", new.did),
            ));
        };
        let wallet: WalletAddress = a
            .wallet
            .parse()
            .map_err(|_| ServiceError::internal("an account's wallet", &a.wallet))?;
        let payload = Payload::MintCash(MintCash {
            token: self.token.clone(),
            to: wallet,
            amount: new.amount,
        });
        let e = Entry::by_person(
            who,
            crate::OPERATOR,
            "deposit",
            format!("{}/{}", new.did, new.reference),
            format!("credited {} {}", new.amount, self.currency.code()),
        );
        let (nonce, hash) = s.decide_tx(&mut w.tx, payload, e).await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO bank_deposits (reference, did, amount, staff, nonce, tx, state, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, 'minting', $7)",
        )
        .bind(new.reference.clone())
        .bind(new.did.clone())
        .bind(new.amount.to_string())
        .bind(who.did.clone())
        .bind(nonce as i64)
        .bind(hash.to_hex())
        .bind(now as i64)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(DepositView {
            reference: new.reference,
            did: new.did,
            amount: new.amount,
            staff: who.did.clone(),
            tx: hash.to_hex(),
            state: "minting".into(),
            outcome: None,
            height: None,
            at_ms: now,
        })
    }

    /// Marks a payout paid (an operator, once the money went out).
    pub async fn mark_paid(
        &self,
        who: &Principal,
        tx: &str,
        paid: Paid,
    ) -> Result<PayoutView, ServiceError> {
        who.require(crate::OPERATOR)?;
        check_reference(&paid.reference)?;
        let s = &self.service;
        let mut w = s.db.write().await?;
        let row: Option<PayoutRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYOUT_COLUMNS} WHERE tx = $1"
        )))
        .bind(tx.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(p) = row.map(payout_view).transpose()? else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                format!("no redemption {tx} is owed (it appears once its block is final)"),
            ));
        };
        if p.state == "paid" {
            if p.reference.as_deref() == Some(paid.reference.as_str()) {
                return Ok(p);
            }
            return Err(ServiceError::new(
                ServiceCode::Conflict,
                "this payout was marked paid already, with another reference",
            ));
        }
        let now = now_ms();
        sqlx::query(
            "UPDATE bank_payouts SET state = 'paid', reference = $1, staff = $2, paid_ms = $3 WHERE tx = $4",
        )
        .bind(paid.reference.clone())
        .bind(who.did.clone())
        .bind(now as i64)
        .bind(tx.to_string())
        .execute(&mut *w.tx)
        .await?;
        let e = Entry::by_person(
            who,
            crate::OPERATOR,
            "pay_out",
            format!("{}/{tx}", p.did),
            format!(
                "paid {} {} ({})",
                p.amount,
                self.currency.code(),
                paid.reference
            ),
        );
        s.decide(&mut w.tx, None, e).await?;
        w.commit().await?;
        Ok(PayoutView {
            state: "paid".into(),
            reference: Some(paid.reference),
            staff: Some(who.did.clone()),
            paid_ms: Some(now),
            ..p
        })
    }

    /// The statement of `did`'s account.
    pub async fn statement(&self, did: &str) -> Result<Statement, ServiceError> {
        let s = &self.service;
        let mut conn = s.db.pool().acquire().await?;
        let Some(account) = account(&mut conn, did).await? else {
            return Err(ServiceError::new(
                ServiceCode::NotFound,
                format!("{did} holds no account here"),
            ));
        };
        let deposits: Vec<DepositRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DEPOSIT_COLUMNS} WHERE did = $1 ORDER BY at_ms DESC, reference LIMIT 1000"
        )))
        .bind(did.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let payouts: Vec<PayoutRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYOUT_COLUMNS} WHERE did = $1 ORDER BY height DESC, tx LIMIT 1000"
        )))
        .bind(did.to_string())
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        let wallet: WalletAddress = account
            .wallet
            .parse()
            .map_err(|_| ServiceError::internal("an account's wallet", &account.wallet))?;
        let view = s
            .node
            .wallet(&wallet)
            .await
            .map_err(ServiceError::unavailable)?
            .data;
        let balance = view
            .balances
            .iter()
            .find(|b| b.token == self.token)
            .map_or(Units::ZERO, |b| b.units);
        let transfers = s
            .node
            .transfers(&TransferFilter {
                token: Some(self.token.clone()),
                wallet: Some(wallet),
                limit: Some(STATEMENT_TRANSFERS_MAX),
                ..TransferFilter::default()
            })
            .await
            .map_err(ServiceError::unavailable)?
            .data
            .transfers;
        Ok(Statement {
            account,
            token: self.token.to_string(),
            balance,
            deposits: deposits
                .into_iter()
                .map(deposit_view)
                .collect::<Result<_, _>>()?,
            payouts: payouts
                .into_iter()
                .map(payout_view)
                .collect::<Result<_, _>>()?,
            transfers,
        })
    }
}
