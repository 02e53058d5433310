//! The orders and the trade ledger (F6-5) as the database keeps them: the
//! views the API answers and the queries behind them.

use crate::market::{side_name, tif_name, Asset, Order};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tranche_service::{ServiceCode, ServiceError};
use tranche_types::Units;

/// Most orders or trades one page lists.
pub const PAGE_MAX: u32 = 1_000;

/// An order and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The exchange's id.
    pub id: u64,
    /// Yours, if you gave one.
    pub client_id: Option<String>,
    /// The trader's DID (shown to them and to staff).
    pub did: String,
    /// `BASE/QUOTE`.
    pub instrument: String,
    /// `buy` or `sell`.
    pub side: String,
    /// The limit price; absent for a market order.
    pub price: Option<u64>,
    /// Tokens ordered (filled plus open, after amends).
    pub quantity: u64,
    /// Tokens still on the book.
    pub open: u64,
    /// Tokens traded.
    pub filled: u64,
    /// Time in force.
    pub tif: String,
    /// `open`, `filled`, `cancelled` (see `reason`) or `rejected` (the
    /// engine's code in `reason`).
    pub state: String,
    /// Why it was cancelled or rejected.
    pub reason: Option<String>,
    /// What that means.
    pub message: Option<String>,
    /// What it still holds of your balance.
    #[schema(value_type = String)]
    pub reserved: Units,
    /// When it was accepted, ms since 1970.
    pub at_ms: u64,
}

/// A trade in the trade ledger (F6-5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TradeView {
    /// The exchange's id.
    pub id: u64,
    /// When it matched, ms since 1970.
    pub at_ms: u64,
    /// `BASE/QUOTE`.
    pub instrument: String,
    /// The security token.
    pub token: String,
    /// What it was paid in: `{"kind":"currency","id":"USD"}` or `{"kind":"token","id":"DUSD"}`.
    #[schema(value_type = Object)]
    pub quote: Asset,
    /// Price, quote minor units per token.
    pub price: u64,
    /// Tokens.
    pub quantity: u64,
    /// Price × quantity.
    #[schema(value_type = String)]
    pub value: Units,
    /// The buyer's DID.
    pub buyer: String,
    /// The seller's DID.
    pub seller: String,
    /// The buy order.
    pub buy_order: u64,
    /// The sell order.
    pub sell_order: u64,
    /// The buyer's fee, in the quote.
    #[schema(value_type = String)]
    pub fee_buyer: Units,
    /// The seller's fee, in the quote.
    #[schema(value_type = String)]
    pub fee_seller: Units,
    /// `settling` (its settlement is on its way to the chain), `settled`
    /// or `failed` (the chain's reject code in `reason`; both sides'
    /// balances are whole).
    pub state: String,
    /// The settlement transaction.
    pub tx: String,
    /// The block that settled it.
    pub height: Option<u64>,
    /// That block's time, ms since 1970.
    pub decided_ms: Option<u64>,
    /// Why the chain refused the settlement.
    pub reason: Option<String>,
    /// What the chain said.
    pub message: Option<String>,
}

pub(crate) fn order_view(
    o: &Order,
    state: &str,
    reason: Option<String>,
    message: Option<String>,
) -> OrderView {
    OrderView {
        id: o.id,
        client_id: o.client_id.clone(),
        did: o.did.clone(),
        instrument: o.instrument.to_string(),
        side: side_name(o.side).into(),
        price: o.price.map(|p| p.0),
        quantity: o.quantity,
        open: o.open,
        filled: o.filled,
        tif: tif_name(o.tif).into(),
        state: state.into(),
        reason,
        message,
        reserved: Units(o.reserved),
        at_ms: o.at_ms,
    }
}

type OrderDbRow = (
    i64,
    Option<String>,
    String,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
);

const ORDER_COLUMNS: &str = "id, client_id, did, instrument, side, price, quantity, open, filled, tif, state, reason, message, reserved, at_ms FROM ex_orders";

fn order_row(r: OrderDbRow) -> OrderView {
    OrderView {
        id: r.0 as u64,
        client_id: r.1,
        did: r.2,
        instrument: r.3,
        side: r.4,
        price: r.5.map(|p| p as u64),
        quantity: r.6 as u64,
        open: r.7 as u64,
        filled: r.8 as u64,
        tif: r.9,
        state: r.10,
        reason: r.11,
        message: r.12,
        reserved: Units(r.13.parse().unwrap_or(0)),
        at_ms: r.14 as u64,
    }
}

pub(crate) async fn order_by_client_id(
    conn: &mut AnyConnection,
    did: &str,
    client_id: &str,
) -> Result<Option<OrderView>, ServiceError> {
    let r: Option<OrderDbRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} WHERE did = $1 AND client_id = $2"
    )))
    .bind(did.to_string())
    .bind(client_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(r.map(order_row))
}

/// One order, if `did` (or staff, `None`) may see it.
pub(crate) async fn order(
    conn: &mut AnyConnection,
    did: Option<&str>,
    id: u64,
) -> Result<OrderView, ServiceError> {
    let r: Option<OrderDbRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} WHERE id = $1"
    )))
    .bind(id as i64)
    .fetch_optional(&mut *conn)
    .await?;
    match r.map(order_row) {
        Some(v) if did.is_none_or(|d| d == v.did) => Ok(v),
        _ => Err(ServiceError::new(
            ServiceCode::NotFound,
            format!("you have no order {id}"),
        )),
    }
}

/// `did`'s orders (staff: everyone's), newest first.
pub(crate) async fn orders(
    conn: &mut AnyConnection,
    did: Option<&str>,
    open_only: bool,
    limit: u32,
) -> Result<Vec<OrderView>, ServiceError> {
    let mut sql = format!("SELECT {ORDER_COLUMNS} WHERE 1 = 1");
    if did.is_some() {
        sql.push_str(" AND did = $1");
    }
    if open_only {
        sql.push_str(" AND state = 'open'");
    }
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT {}",
        limit.clamp(1, PAGE_MAX)
    ));
    let mut q = sqlx::query_as::<_, OrderDbRow>(sqlx::AssertSqlSafe(sql));
    if let Some(d) = did {
        q = q.bind(d.to_string());
    }
    Ok(q.fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(order_row)
        .collect())
}

fn trade_row(r: &sqlx::any::AnyRow) -> Result<TradeView, ServiceError> {
    use sqlx::Row as _;
    let units = |i: usize| -> Result<Units, ServiceError> {
        let s: String = r.try_get(i)?;
        s.parse()
            .map(Units)
            .map_err(|_| ServiceError::internal("a trade's amount", s))
    };
    let quote: String = r.try_get(4)?;
    Ok(TradeView {
        id: r.try_get::<i64, _>(0)? as u64,
        at_ms: r.try_get::<i64, _>(1)? as u64,
        instrument: r.try_get(2)?,
        token: r.try_get(3)?,
        quote: serde_json::from_str(&quote)
            .map_err(|e| ServiceError::internal("a trade's quote", e))?,
        price: r.try_get::<i64, _>(5)? as u64,
        quantity: r.try_get::<i64, _>(6)? as u64,
        value: units(7)?,
        buyer: r.try_get(8)?,
        seller: r.try_get(9)?,
        buy_order: r.try_get::<i64, _>(10)? as u64,
        sell_order: r.try_get::<i64, _>(11)? as u64,
        fee_buyer: units(12)?,
        fee_seller: units(13)?,
        state: r.try_get(14)?,
        tx: r.try_get(15)?,
        height: r.try_get::<Option<i64>, _>(16)?.map(|h| h as u64),
        reason: r.try_get(17)?,
        message: r.try_get(18)?,
        decided_ms: r.try_get::<Option<i64>, _>(19)?.map(|t| t as u64),
    })
}

/// Trades `did` took part in (staff: all), newest first; or, after a
/// trade id, oldest first from there.
pub(crate) async fn trades(
    conn: &mut AnyConnection,
    did: Option<&str>,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<TradeView>, ServiceError> {
    let mut sql =
        "SELECT id, at_ms, instrument, token, quote, price, quantity, value, buyer, seller,
        buy_order, sell_order, fee_buyer, fee_seller, state, tx, height, reason, message, decided_ms
        FROM ex_trades WHERE id > $1"
            .to_string();
    if did.is_some() {
        sql.push_str(" AND (buyer = $2 OR seller = $2)");
    }
    // Newest first, unless reading on from a cursor.
    let order = if after.is_some() { "ASC" } else { "DESC" };
    sql.push_str(&format!(
        " ORDER BY id {order} LIMIT {}",
        limit.clamp(1, PAGE_MAX)
    ));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after.unwrap_or(0) as i64);
    if let Some(d) = did {
        q = q.bind(d.to_string());
    }
    q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(trade_row)
        .collect()
}
