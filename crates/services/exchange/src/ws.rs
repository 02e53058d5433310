//! The exchange's WebSocket (`GET /ws`): orders in (place, cancel, amend,
//! answered as over REST), and live out — the book of each instrument a
//! client subscribes to (best bid and offer and depth), its trades, and the
//! client's own orders as they change. What the sequencer and the follower
//! commit is published once, after the commit, to every connection.

use crate::effects::Effects;
use crate::market::{BookView, Market};
use crate::orders::{AmendRequest, OrderRequest};
use crate::records::{order_view, OrderView};
use crate::Exchange;
use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::{FuturesOrdered, StreamExt as _};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use tokio::sync::broadcast;
use tranche_matching::InstrumentId;
use tranche_service::{now_ms, ServiceCode, ServiceError};

/// Updates a slow connection may fall behind by before it is told it
/// lagged.
pub(crate) const UPDATES_BEHIND_MAX: usize = 1_024;
/// Levels a side of each book update carries.
pub const BOOK_DEPTH: usize = 10;
/// Commands one connection may have waiting for their answers.
pub const IN_FLIGHT_MAX: usize = 256;
/// Instruments one connection may follow.
pub const SUBSCRIPTIONS_MAX: usize = 64;
/// Longest message a client may send, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024;

/// A trade as market data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeTick {
    /// `BASE/QUOTE`.
    pub instrument: String,
    /// The trade's id.
    pub trade: u64,
    /// Price, quote minor units per token.
    pub price: u64,
    /// Tokens.
    pub quantity: u64,
    /// When, ms since 1970.
    pub at_ms: u64,
}

/// What one commit changed, as market data.
#[derive(Debug, Default)]
pub(crate) struct MarketUpdate {
    books: Vec<BookView>,
    trades: Vec<TradeTick>,
    orders: Vec<OrderView>,
}

/// A client's message.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Subscribe {
        instrument: String,
    },
    Unsubscribe {
        instrument: String,
    },
    Place {
        order: OrderRequest,
    },
    Cancel {
        order: u64,
    },
    Amend {
        order: u64,
        quantity: u64,
        #[serde(default)]
        price: Option<u64>,
    },
}

/// A message to a client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Push<'a> {
    Book(&'a BookView),
    Trade(&'a TradeTick),
    Order(&'a OrderView),
    Error { code: ServiceCode, message: String },
    Lagged { missed: u64 },
}

/// What changed in `fx`, for publishing once it is committed: the
/// instruments it touched, its trades and its orders.
pub(crate) struct Touched {
    instruments: BTreeSet<InstrumentId>,
    trades: Vec<TradeTick>,
    orders: Vec<OrderView>,
}

impl Touched {
    /// Notes what `fx` changes (cheap when nobody listens).
    pub(crate) fn of(fx: &Effects, listening: bool) -> Option<Touched> {
        if !listening {
            return None;
        }
        let now = now_ms();
        let mut instruments: BTreeSet<InstrumentId> = fx
            .orders
            .values()
            .map(|r| r.order.instrument.clone())
            .collect();
        instruments.extend(fx.trades.iter().map(|t| t.instrument.clone()));
        Some(Touched {
            instruments,
            trades: fx
                .trades
                .iter()
                .map(|t| TradeTick {
                    instrument: t.instrument.to_string(),
                    trade: t.id,
                    price: t.price,
                    quantity: t.settling.quantity,
                    at_ms: now,
                })
                .collect(),
            orders: fx
                .orders
                .values()
                .map(|r| order_view(&r.order, r.state, r.reason.clone(), r.message.clone()))
                .collect(),
        })
    }
}

impl Exchange {
    /// Publishes what a committed step changed, with the books as they
    /// stand now.
    pub(crate) fn publish(&self, touched: Option<Touched>) {
        let Some(t) = touched else { return };
        let books = {
            let m: std::sync::MutexGuard<'_, Market> = self.market();
            t.instruments
                .iter()
                .filter_map(|i| m.book(i, BOOK_DEPTH))
                .collect()
        };
        let _ = self.updates.send(Arc::new(MarketUpdate {
            books,
            trades: t.trades,
            orders: t.orders,
        }));
    }

    /// Whether any connection listens.
    pub(crate) fn listening(&self) -> bool {
        self.updates.receiver_count() > 0
    }

    /// Serves one connection of trader (or reader) `did`.
    pub(crate) async fn serve_ws(self: Arc<Self>, mut socket: WebSocket, did: String) {
        let mut updates = self.updates.subscribe();
        let mut subscribed: HashSet<String> = HashSet::new();
        // Commands reach the sequencer in the order they came; their
        // answers are awaited together and sent in that order.
        let mut pending: FuturesOrdered<Reply> = FuturesOrdered::new();
        loop {
            tokio::select! {
                incoming = socket.recv(), if pending.len() < IN_FLIGHT_MAX => {
                    let Some(Ok(message)) = incoming else { return };
                    let text = match message {
                        Message::Text(t) => t,
                        Message::Close(_) => return,
                        _ => continue,
                    };
                    pending.push_back(self.answer(&did, text.as_str(), &mut subscribed).await);
                }
                Some(answers) = pending.next(), if !pending.is_empty() => {
                    for a in answers {
                        if socket.send(Message::Text(a.into())).await.is_err() {
                            return;
                        }
                    }
                }
                update = updates.recv() => {
                    let texts = match update {
                        Ok(u) => outgoing(&u, &did, &subscribed),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            vec![text(&Push::Lagged { missed })]
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    for t in texts {
                        if socket.send(Message::Text(t.into())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Carries out one client message up to the sequencer's queue; what
    /// to send back, once it is known.
    async fn answer(&self, did: &str, raw: &str, subscribed: &mut HashSet<String>) -> Reply {
        let now = |texts: Vec<String>| -> Reply { Box::pin(std::future::ready(texts)) };
        let error = |e: ServiceError| now(error_text(e));
        if raw.len() > MESSAGE_BYTES_MAX {
            return error(ServiceError::new(
                ServiceCode::TooLarge,
                format!("a message is at most {MESSAGE_BYTES_MAX} bytes"),
            ));
        }
        let request: Request = match serde_json::from_str(raw) {
            Ok(r) => r,
            Err(e) => {
                return error(ServiceError::new(
                    ServiceCode::BadRequest,
                    format!("the message does not read: {e}; send {{\"op\":\"subscribe\"|\"unsubscribe\"|\"place\"|\"cancel\"|\"amend\", …}}"),
                ))
            }
        };
        let placed = match request {
            Request::Subscribe { instrument } => {
                let book = InstrumentId::new(&instrument)
                    .ok()
                    .and_then(|i| self.market().book(&i, BOOK_DEPTH));
                let Some(book) = book else {
                    return error(ServiceError::new(
                        ServiceCode::NotFound,
                        format!("{instrument} is not listed"),
                    ));
                };
                if subscribed.len() >= SUBSCRIPTIONS_MAX {
                    return error(ServiceError::new(
                        ServiceCode::BadRequest,
                        format!("a connection follows at most {SUBSCRIPTIONS_MAX} instruments"),
                    ));
                }
                subscribed.insert(instrument);
                return now(vec![text(&Push::Book(&book))]);
            }
            Request::Unsubscribe { instrument } => {
                subscribed.remove(&instrument);
                return now(Vec::new());
            }
            Request::Place { order } => self.place_queued(did, order).await,
            Request::Cancel { order } => self.cancel_queued(did, order).await,
            Request::Amend {
                order,
                quantity,
                price,
            } => {
                self.amend_queued(did, order, AmendRequest { quantity, price })
                    .await
            }
        };
        match placed {
            Ok(answer) => Box::pin(async move {
                match answer.resolve().await {
                    Ok(o) => vec![text(&Push::Order(&o))],
                    Err(e) => error_text(e),
                }
            }),
            Err(e) => error(e),
        }
    }
}

/// What is sent back for one message, once it is known.
type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send>>;

fn text(p: &Push<'_>) -> String {
    serde_json::to_string(p).expect("pushes serialize")
}

fn error_text(e: ServiceError) -> Vec<String> {
    vec![text(&Push::Error {
        code: e.code,
        message: e.message,
    })]
}

/// What of `u` goes to a connection of `did` following `subscribed`.
fn outgoing(u: &MarketUpdate, did: &str, subscribed: &HashSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for t in u
        .trades
        .iter()
        .filter(|t| subscribed.contains(&t.instrument))
    {
        out.push(text(&Push::Trade(t)));
    }
    for b in u
        .books
        .iter()
        .filter(|b| subscribed.contains(&b.instrument))
    {
        out.push(text(&Push::Book(b)));
    }
    for o in u.orders.iter().filter(|o| o.did == did) {
        out.push(text(&Push::Order(o)));
    }
    out
}

/// A channel for market updates.
pub(crate) fn channel() -> broadcast::Sender<Arc<MarketUpdate>> {
    broadcast::channel(UPDATES_BEHIND_MAX).0
}
