//! Orders: checked before they reach a book (the trader's free balance,
//! the AML limits, the token's rules for the trader's side), then carried
//! out by the sequencer in arrival order and written — journal, orders,
//! trades and their settlements — in one database transaction per batch
//! before anyone is answered (group commit).

use crate::market::{fee, refusal, Asset, Effects, Market, Order, Refusal};
use crate::records::{order_by_client_id, order_view, OrderView};
use crate::Exchange;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tranche_matching::{
    Command, InstrumentId, NewOrder, Price, Qty, SelfTradePrevention, Side, TimeInForce,
};
use tranche_service::audit::Entry;
use tranche_service::{now_ms, ServiceCode, ServiceError};
use tranche_types::{OrderId, TokenId, Units, MS_PER_DAY};

/// Commands waiting for the sequencer.
pub(crate) const QUEUE_MAX: usize = 16_384;
/// The most commands one database transaction carries.
const BATCH_MAX: usize = 1_024;
/// Longest client order id, in bytes.
pub const CLIENT_ID_MAX: usize = 64;

/// `POST /orders`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// `BASE/QUOTE`, e.g. `ACME/USD` (`GET /markets` lists them).
    pub instrument: String,
    /// `buy` or `sell`.
    pub side: String,
    /// The limit price in the quote's minor units per token (cents for
    /// USD, the token's own units for an on-chain quote); absent for a
    /// market order.
    #[serde(default)]
    pub price: Option<u64>,
    /// Whole tokens.
    pub quantity: u64,
    /// `gtc` (default for a limit order), `ioc` (default for a market
    /// order), `fok` or `post_only`.
    #[serde(default)]
    pub tif: Option<String>,
    /// When it would trade with your own order: `cancel_newest` (default),
    /// `cancel_oldest` or `cancel_both`.
    #[serde(default)]
    pub stp: Option<String>,
    /// Your id for it (at most 64 characters): the same id again answers
    /// the same order, so a retry never places it twice.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `PATCH /orders/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    /// The new open quantity.
    pub quantity: u64,
    /// The new limit price, if it changes.
    #[serde(default)]
    pub price: Option<u64>,
}

/// What the sequencer is asked to do.
#[derive(Debug)]
pub(crate) enum Op {
    Submit(Checked),
    Cancel(u64),
    Amend(u64, AmendRequest),
}

/// An order that passed the checks made outside the sequencer.
#[derive(Debug)]
pub(crate) struct Checked {
    instrument: InstrumentId,
    side: Side,
    price: Option<Price>,
    quantity: u64,
    tif: TimeInForce,
    stp: SelfTradePrevention,
    client_id: Option<String>,
}

/// A command and where its answer goes.
#[derive(Debug)]
pub(crate) struct Pending {
    did: String,
    op: Op,
    reply: oneshot::Sender<Result<OrderView, ServiceError>>,
}

/// The holder checks the node lately passed, by wallet, token and side,
/// with when each stops counting.
#[derive(Debug, Default)]
pub(crate) struct EligibilityCache {
    passes: HashMap<(String, TokenId, bool), u64>,
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ServiceCode::BadRequest, message)
}

fn refused(r: Refusal) -> ServiceError {
    ServiceError::new(ServiceCode::Refused, format!("{}: {}", r.code, r.message))
}

/// A command's answer: at once, or once the sequencer has it durable.
#[derive(Debug)]
pub(crate) enum Answer {
    Ready(Box<Result<OrderView, ServiceError>>),
    Waiting(oneshot::Receiver<Result<OrderView, ServiceError>>),
}

impl Answer {
    /// The answer, waiting for the sequencer if need be.
    pub(crate) async fn resolve(self) -> Result<OrderView, ServiceError> {
        match self {
            Answer::Ready(a) => *a,
            Answer::Waiting(rx) => rx
                .await
                .map_err(|_| ServiceError::internal("the sequencer", "stopped before answering"))?,
        }
    }
}

impl Exchange {
    /// Checks `r` from trader `did` as far as it can without the books,
    /// then hands it to the sequencer and waits for it to be durable.
    pub async fn place(&self, did: &str, r: OrderRequest) -> Result<OrderView, ServiceError> {
        self.place_queued(did, r).await?.resolve().await
    }

    /// [`Exchange::place`] up to the sequencer's queue: commands of one
    /// connection reach the sequencer in the order they came, while their
    /// answers are awaited together.
    pub(crate) async fn place_queued(
        &self,
        did: &str,
        r: OrderRequest,
    ) -> Result<Answer, ServiceError> {
        if let Some(c) = &r.client_id {
            if c.is_empty() || c.len() > CLIENT_ID_MAX || c.chars().any(char::is_control) {
                return Err(bad(format!(
                    "client_id is 1 to {CLIENT_ID_MAX} printable characters"
                )));
            }
            let mut conn = self.service.db.pool().acquire().await?;
            if let Some(v) = order_by_client_id(&mut conn, did, c).await? {
                return Ok(Answer::Ready(Box::new(Ok(v))));
            }
        }
        let instrument = InstrumentId::new(&r.instrument).map_err(|e| bad(e.to_string()))?;
        let side = match r.side.as_str() {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            _ => return Err(bad("side is buy or sell")),
        };
        let tif = match (r.tif.as_deref(), r.price) {
            (None, Some(_)) | (Some("gtc"), _) => TimeInForce::Gtc,
            (None, None) | (Some("ioc"), _) => TimeInForce::Ioc,
            (Some("fok"), _) => TimeInForce::Fok,
            (Some("post_only"), _) => TimeInForce::PostOnly,
            (Some(other), _) => {
                return Err(bad(format!(
                    "tif {other:?} is not one of gtc, ioc, fok, post_only"
                )))
            }
        };
        let stp = match r.stp.as_deref() {
            None | Some("cancel_newest") => SelfTradePrevention::CancelNewest,
            Some("cancel_oldest") => SelfTradePrevention::CancelOldest,
            Some("cancel_both") => SelfTradePrevention::CancelBoth,
            Some(other) => {
                return Err(bad(format!(
                    "stp {other:?} is not one of cancel_newest, cancel_oldest, cancel_both"
                )))
            }
        };
        if r.quantity == 0 {
            return Err(bad("quantity must be at least 1"));
        }
        if r.price == Some(0) {
            return Err(bad(
                "a limit price must be above 0; leave it out for a market order",
            ));
        }
        // The exchange's own limits per order; the regulator's policy adds
        // its rules in the sequencer.
        let units_max = self.policy.order_units_max.0;
        if u128::from(r.quantity) > units_max {
            return Err(refused(refusal(
                "over_order_limit",
                format!("an order carries at most {units_max} tokens (the exchange's AML limit)"),
            )));
        }
        let value_max = self.policy.order_value_max.0;
        if let Some(p) = r.price {
            if u128::from(p) * u128::from(r.quantity) > value_max {
                return Err(refused(refusal(
                    "over_value_limit",
                    format!("an order is worth at most {value_max} in the quote's minor units (the exchange's AML limit)"),
                )));
            }
        }
        // The token's rules for the trader's side, on chain: a buyer the
        // ledger would refuse never reaches the book.
        let (wallet, base, quote) = {
            let m = self.market();
            let pair = m.pairs.get(&instrument).ok_or_else(|| {
                ServiceError::new(
                    ServiceCode::NotFound,
                    format!("{instrument} is not listed; GET /markets lists what is"),
                )
            })?;
            let trader = m.traders.get(did).ok_or_else(not_trader)?;
            if !trader.active {
                return Err(not_active());
            }
            (trader.wallet, pair.base.clone(), pair.quote.clone())
        };
        let units = Units(u128::from(r.quantity));
        self.eligible(&wallet, &base, side == Side::Buy, units)
            .await?;
        if let Asset::Token(q) = &quote {
            let value = Units(u128::from(r.price.unwrap_or(1)) * u128::from(r.quantity));
            self.eligible(&wallet, q, side == Side::Sell, value).await?;
        }
        let op = Op::Submit(Checked {
            instrument,
            side,
            price: r.price.map(Price),
            quantity: r.quantity,
            tif,
            stp,
            client_id: r.client_id,
        });
        self.enqueue(did, op).await
    }

    /// Cancels order `id` of trader `did`.
    pub async fn cancel(&self, did: &str, id: u64) -> Result<OrderView, ServiceError> {
        self.cancel_queued(did, id).await?.resolve().await
    }

    /// [`Exchange::cancel`] up to the sequencer's queue.
    pub(crate) async fn cancel_queued(&self, did: &str, id: u64) -> Result<Answer, ServiceError> {
        self.enqueue(did, Op::Cancel(id)).await
    }

    /// Amends order `id` of trader `did`.
    pub async fn amend(
        &self,
        did: &str,
        id: u64,
        a: AmendRequest,
    ) -> Result<OrderView, ServiceError> {
        self.amend_queued(did, id, a).await?.resolve().await
    }

    /// [`Exchange::amend`] up to the sequencer's queue.
    pub(crate) async fn amend_queued(
        &self,
        did: &str,
        id: u64,
        a: AmendRequest,
    ) -> Result<Answer, ServiceError> {
        if a.quantity == 0 {
            return Err(bad(
                "quantity must be at least 1; cancel the order to take it off the book",
            ));
        }
        if a.price == Some(0) {
            return Err(bad("a limit price must be above 0"));
        }
        self.enqueue(did, Op::Amend(id, a)).await
    }

    /// Hands `op` to the sequencer; its answer comes later.
    async fn enqueue(&self, did: &str, op: Op) -> Result<Answer, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Pending {
                did: did.to_string(),
                op,
                reply,
            })
            .await
            .map_err(|_| ServiceError::internal("the sequencer", "stopped"))?;
        Ok(Answer::Waiting(answer))
    }

    /// Refuses unless the node says `token`'s rules let `wallet` give
    /// (`receive` false) or receive `amount`; a pass is reused briefly.
    async fn eligible(
        &self,
        wallet: &tranche_types::WalletAddress,
        token: &TokenId,
        receive: bool,
        amount: Units,
    ) -> Result<(), ServiceError> {
        let now = now_ms();
        let key = (wallet.to_string(), token.clone(), receive);
        // Only passes are kept: a trader refused (a paused token, a frozen
        // wallet) is asked about again next time, so a resumption is seen
        // at once.
        let passed = self
            .eligibility
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .passes
            .get(&key)
            .is_some_and(|until| *until > now);
        if passed {
            return Ok(());
        }
        let c = self
            .service
            .node
            .check_holder(token, wallet, receive, amount)
            .await
            .map_err(ServiceError::unavailable)?
            .data;
        let answer = if c.ok {
            let mut cache = self.eligibility.lock().unwrap_or_else(|e| e.into_inner());
            if cache.passes.len() > 100_000 {
                cache.passes.retain(|_, until| *until > now);
            }
            cache
                .passes
                .insert(key, now + self.policy.eligibility_ttl_ms);
            Ok(())
        } else {
            Err((
                c.code.map(|c| c.name().to_string()).unwrap_or_default(),
                c.message.unwrap_or_default(),
            ))
        };
        answer.map_err(|(code, message)| {
            refused(refusal(
                "not_eligible",
                format!(
                    "the chain would refuse you {} {token}: {message} ({code})",
                    if receive { "receiving" } else { "giving" }
                ),
            ))
        })
    }

    /// The sequencer: takes commands in arrival order, carries them out on
    /// the books, and writes each batch in one transaction before it
    /// answers. Stops (and the service with it) if a batch cannot be
    /// written: the books in memory would be ahead of the journal.
    pub(crate) async fn sequence(
        self: Arc<Self>,
        mut queue: mpsc::Receiver<Pending>,
    ) -> Result<(), ServiceError> {
        let mut batch = Vec::with_capacity(BATCH_MAX);
        while queue.recv_many(&mut batch, BATCH_MAX).await > 0 {
            let pending = std::mem::take(&mut batch);
            // The write turn before the market: the follower takes them in
            // the same order, so what memory shows is what commits next.
            let mut w = self.service.db.write().await?;
            let mut fx = Effects::default();
            let answers: Vec<Result<OrderView, ServiceError>> = {
                let mut m = self.market();
                let first = m.next_seq;
                let answers: Vec<_> = pending
                    .iter()
                    .map(|p| carry_out(&mut m, &self.policy, p, &mut fx))
                    .collect();
                if m.next_seq > first {
                    fx.audit.push(Entry {
                        actor: self.service.config.org.clone(),
                        authority: "sessions".into(),
                        action: "journal".into(),
                        subject: format!("journal/{first}..{}", m.next_seq - 1),
                        decision: format!(
                            "{} commands journaled, {} trades to settle",
                            m.next_seq - first,
                            fx.trades.len()
                        ),
                        reason: None,
                        tx: None,
                    });
                }
                answers
            };
            let touched = crate::ws::Touched::of(&fx, self.listening());
            let sent = fx.write(&self, &mut w.tx).await?;
            w.commit().await?;
            self.publish(touched);
            if sent {
                self.service.send_soon();
            }
            for (p, a) in pending.into_iter().zip(answers) {
                let _ = p.reply.send(a);
            }
        }
        Ok(())
    }
}

fn not_trader() -> ServiceError {
    ServiceError::new(
        ServiceCode::NotFound,
        "you are not a trader here yet: POST /traders first",
    )
}

fn not_active() -> ServiceError {
    ServiceError::new(
        ServiceCode::Conflict,
        "your wallet is not bound to your DID on chain yet: PUT /traders/me/wallet with your consent, then wait for it to be final",
    )
}

/// The AML policy's rules for an order of `did` worth `value` in `quote`
/// (F6-1): a sanctioned identity or a blocked jurisdiction never trades,
/// and an identity commits at most the daily limit in a day.
fn aml_check(m: &Market, did: &str, quote: &str, day: u64, value: u128) -> Result<(), Refusal> {
    let Some(policy) = m.aml_policy() else {
        return Ok(());
    };
    if policy.is_sanctioned(did) {
        return Err(refusal(
            "sanctioned",
            "the AML regulator's sanctions list names your identity: the exchange takes no orders from it",
        ));
    }
    if let Some(country) = m.traders.get(did).and_then(|t| t.country) {
        if policy.is_blocked(&country) {
            return Err(refusal(
                "blocked_jurisdiction",
                format!("the AML regulator's policy bars residents of {country} from trading"),
            ));
        }
    }
    if let Some(max) = policy
        .limit(quote)
        .map(|l| l.daily_value_max.0)
        .filter(|max| *max > 0)
    {
        let today = m.committed_on(did, quote, day);
        if today.saturating_add(value) > max {
            return Err(refusal(
                "over_daily_limit",
                format!(
                    "the AML policy lets one identity commit at most {max} {quote} in orders a day (UTC); you committed {today} today and this order is worth {value}"
                ),
            ));
        }
    }
    Ok(())
}

/// Carries out one command on the market; its answer.
fn carry_out(
    m: &mut Market,
    policy: &crate::ExchangeSection,
    p: &Pending,
    fx: &mut Effects,
) -> Result<OrderView, ServiceError> {
    let trader = m.traders.get(&p.did).ok_or_else(not_trader)?.id;
    match &p.op {
        Op::Submit(c) => {
            if let Some(cid) = &c.client_id {
                if m.client_ids.contains(&(p.did.clone(), cid.clone())) {
                    return Err(ServiceError::new(
                        ServiceCode::Conflict,
                        format!(
                            "an order with client_id {cid:?} is being placed; GET /orders shows it"
                        ),
                    ));
                }
            }
            let pair = m
                .pairs
                .get(&c.instrument)
                .ok_or_else(|| {
                    ServiceError::new(
                        ServiceCode::NotFound,
                        format!("{} is not listed", c.instrument),
                    )
                })?
                .clone();
            // The regulator's policy, when there is one (F6-1), else the
            // exchange's own limits.
            let day = now_ms() / MS_PER_DAY;
            let quote = pair.quote.to_string();
            let worth = match (c.price, c.side) {
                (Some(p), _) => u128::from(p.0) * u128::from(c.quantity),
                (None, Side::Buy) => m.market_cost(&c.instrument, c.quantity).unwrap_or(0),
                (None, Side::Sell) => m.market_proceeds(&c.instrument, c.quantity),
            };
            if let Err(r) = aml_check(m, &p.did, &quote, day, worth) {
                fx.audit.push(Entry {
                    actor: p.did.clone(),
                    authority: "aml-policy".into(),
                    action: "order".into(),
                    subject: format!("instrument/{}", c.instrument),
                    decision: format!("refused: {}", r.code),
                    reason: Some(r.message.clone()),
                    tx: None,
                });
                return Err(refused(r));
            }
            let (asset, reserve) = match c.side {
                Side::Sell => (Asset::Token(pair.base.clone()), u128::from(c.quantity)),
                Side::Buy => {
                    let value = worth;
                    if value > policy.order_value_max.0 {
                        return Err(refused(refusal(
                            "over_value_limit",
                            format!("the order is worth {value}; at most {} is allowed (the exchange's AML limit)", policy.order_value_max),
                        )));
                    }
                    (
                        pair.quote.clone(),
                        value + fee(value, m.fee_on(&pair.quote)),
                    )
                }
            };
            let free = m.free(&p.did, &asset);
            if free < reserve {
                let code = if c.side == Side::Sell {
                    "insufficient_tokens"
                } else {
                    "insufficient_funds"
                };
                let r = refusal(
                    code,
                    format!("the order needs {reserve} {asset}; you have {free} free of open orders and unsettled trades"),
                );
                fx.audit.push(Entry {
                    actor: p.did.clone(),
                    authority: "session".into(),
                    action: "order".into(),
                    subject: format!("instrument/{}", c.instrument),
                    decision: format!("refused: {}", r.code),
                    reason: None,
                    tx: None,
                });
                return Err(refused(r));
            }
            let id = m.next_order;
            m.next_order += 1;
            let order = Order {
                id,
                did: p.did.clone(),
                client_id: c.client_id.clone(),
                instrument: c.instrument.clone(),
                side: c.side,
                price: c.price,
                quantity: c.quantity,
                open: c.quantity,
                filled: 0,
                tif: c.tif,
                reserved: reserve,
                asset: asset.clone(),
                at_ms: now_ms(),
            };
            *m.held.entry((p.did.clone(), asset)).or_default() += reserve;
            if let Some(cid) = &c.client_id {
                m.client_ids.insert((p.did.clone(), cid.clone()));
            }
            m.orders.insert(id, order);
            let cmd = Command::Submit(NewOrder {
                id: OrderId(id),
                trader: tranche_matching::TraderId(trader),
                side: c.side,
                price: c.price,
                quantity: Qty(c.quantity),
                tif: c.tif,
                stp: c.stp,
            });
            m.execute(&c.instrument, cmd, Some(id), fx);
            // A limit order commits its whole value; a market order what
            // it traded.
            let committed = match c.price {
                Some(_) => worth,
                None => fx
                    .trades
                    .iter()
                    .filter(|t| t.buy_order == id || t.sell_order == id)
                    .map(|t| t.settling.value)
                    .sum(),
            };
            m.commit(&p.did, &quote, day, committed);
            let row = fx.orders.get(&id).expect("a submitted order is written");
            Ok(order_view(
                &row.order,
                row.state,
                row.reason.clone(),
                row.message.clone(),
            ))
        }
        Op::Cancel(id) => {
            let o = owned(m, &p.did, *id)?;
            let cmd = Command::Cancel {
                order: OrderId(*id),
                trader: tranche_matching::TraderId(trader),
            };
            if let Some(r) = m.execute(&o.instrument, cmd, Some(*id), fx) {
                return Err(engine_refusal(r));
            }
            let row = fx.orders.get(id).expect("a cancelled order is written");
            Ok(order_view(
                &row.order,
                row.state,
                row.reason.clone(),
                row.message.clone(),
            ))
        }
        Op::Amend(id, a) => {
            let o = owned(m, &p.did, *id)?;
            let price = a.price.map(Price).or(o.price);
            // Only what the amendment adds counts against a daily limit.
            let day = now_ms() / MS_PER_DAY;
            let quote = m
                .pairs
                .get(&o.instrument)
                .map(|pair| pair.quote.to_string())
                .unwrap_or_default();
            let was = u128::from(o.price.map_or(0, |p| p.0)) * u128::from(o.open);
            let now = u128::from(price.map_or(0, |p| p.0)) * u128::from(a.quantity);
            let added = now.saturating_sub(was);
            aml_check(m, &p.did, &quote, day, added).map_err(refused)?;
            let need = match o.side {
                Side::Sell => u128::from(a.quantity),
                Side::Buy => {
                    let value = now;
                    if value > policy.order_value_max.0 {
                        return Err(refused(refusal(
                            "over_value_limit",
                            format!(
                                "the order would be worth {value}; at most {} is allowed",
                                policy.order_value_max
                            ),
                        )));
                    }
                    value + fee(value, m.fee_on(&o.asset))
                }
            };
            if u128::from(a.quantity) > policy.order_units_max.0 {
                return Err(refused(refusal(
                    "over_order_limit",
                    "the order would carry more tokens than the exchange's AML limit",
                )));
            }
            let before = o.reserved;
            if need > before {
                let free = m.free(&p.did, &o.asset);
                if free < need - before {
                    return Err(refused(refusal(
                        "insufficient_funds",
                        format!(
                            "the amended order needs {} more {}; you have {free} free",
                            need - before,
                            o.asset
                        ),
                    )));
                }
            }
            set_reserved(m, *id, need);
            let cmd = Command::Amend {
                order: OrderId(*id),
                trader: tranche_matching::TraderId(trader),
                quantity: Qty(a.quantity),
                price: a.price.map(Price),
            };
            if let Some(r) = m.execute(&o.instrument, cmd, Some(*id), fx) {
                set_reserved(m, *id, before);
                return Err(engine_refusal(r));
            }
            m.commit(&p.did, &quote, day, added);
            let row = fx.orders.get(id).expect("an amended order is written");
            Ok(order_view(
                &row.order,
                row.state,
                row.reason.clone(),
                row.message.clone(),
            ))
        }
    }
}

/// Sets what order `id` holds, moving the difference in or out of the hold.
fn set_reserved(m: &mut Market, id: u64, to: u128) {
    let Some(o) = m.orders.get_mut(&id) else {
        return;
    };
    let key = (o.did.clone(), o.asset.clone());
    let from = o.reserved;
    o.reserved = to;
    let h = m.held.entry(key).or_default();
    *h = (*h + to)
        .checked_sub(from)
        .expect("an order's hold is within the trader's");
}

fn owned(m: &Market, did: &str, id: u64) -> Result<Order, ServiceError> {
    match m.orders.get(&id) {
        Some(o) if o.did == did => Ok(o.clone()),
        _ => Err(ServiceError::new(
            ServiceCode::NotFound,
            format!("you have no open order {id}; it may be filled or cancelled already"),
        )),
    }
}

fn engine_refusal(r: tranche_matching::OrderReject) -> ServiceError {
    ServiceError::new(
        ServiceCode::Refused,
        format!("{}: {}", r.name().to_lowercase(), r.message()),
    )
}
