//! `tranche bench exchange`: traders send orders to the devnet's exchange
//! service over its WebSocket (each accepted command journaled before it is
//! answered), the matched trades settle on chain, and the run reports
//! orders accepted per second end to end against the bare matching engine
//! on the same orders in the same run, trades settled per second, and the
//! latency from order to acknowledgement and from match to finality.
#![allow(clippy::disallowed_methods)] // a benchmark measures wall time

use crate::people::{service, until, Person, Services};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{stream, SinkExt as _, StreamExt as _, TryStreamExt as _};
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
#[allow(clippy::disallowed_types)] // a benchmark measures wall time
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tranche_api::client::NodeClient;
use tranche_crypto::Keypair;
use tranche_devnet::DevnetFile;
use tranche_ledger::Ledger;
use tranche_matching::{
    Command, InstrumentSpec, MatchingEngine, NewOrder, Price, Qty, Quote, SelfTradePrevention,
    Side, TimeInForce, TraderId,
};
use tranche_testkit::world::{
    appraisal, claim_until, execution, issuance_request, record_ownership, register_asset, usd,
};
use tranche_types::{ClaimTopic, Currency, Date, Did, OrderId, Payload};

/// The most traders one run takes.
pub const TRADERS_MAX: usize = 1_000;
/// The token traded.
const TOKEN: &str = "BENCH-X";
/// The middle of the prices orders are drawn around, cents per token.
const MID: u64 = 10_000;
/// Orders one trader has in flight before waiting for answers.
const WINDOW: usize = 64;
/// Tokens each seller starts with.
const SELLER_UNITS: u128 = 1_000_000;

/// `tranche bench exchange` settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Traders, each on a WebSocket of their own; half sell, half buy.
    pub traders: usize,
    /// Orders in all.
    pub orders: usize,
    /// The devnet's base port.
    pub base_port: u16,
}

/// One order of the workload: who, which side, at what price, how many.
#[derive(Debug, Clone, Copy)]
struct Planned {
    trader: usize,
    side: Side,
    price: u64,
    quantity: u64,
}

/// The workload: sellers and buyers alternating, prices drawn around the
/// middle so about half the orders cross, 1 to 10 tokens each.
fn workload(traders: usize, orders: usize) -> Vec<Planned> {
    let mut rng = crate::SplitMix(0xE8C4);
    let half = traders / 2;
    (0..orders)
        .map(|i| {
            let buy = i % 2 == 1;
            let trader = if buy {
                half + rng.below((traders - half) as u64) as usize
            } else {
                rng.below(half as u64) as usize
            };
            Planned {
                trader,
                side: if buy { Side::Buy } else { Side::Sell },
                price: MID - 20 + rng.below(41),
                quantity: 1 + rng.below(10),
            }
        })
        .collect()
}

/// The bare engine's rate on the same orders, orders per second.
fn engine_rate(orders: &[Planned]) -> Result<u64> {
    let mut engine: MatchingEngine = MatchingEngine::new();
    let usd = Currency::known("USD").map_err(|e| anyhow!("{e}"))?;
    let id = engine
        .list(InstrumentSpec::new(TOKEN.parse()?, Quote::Currency(usd)))
        .map_err(|e| anyhow!("{e}"))?;
    let mut events = Vec::new();
    let start = Instant::now();
    for (n, o) in orders.iter().enumerate() {
        events.clear();
        let cmd = Command::Submit(NewOrder {
            id: OrderId(n as u64 + 1),
            trader: TraderId(o.trader as u64),
            side: o.side,
            price: Some(Price(o.price)),
            quantity: Qty(o.quantity),
            tif: TimeInForce::Gtc,
            stp: SelfTradePrevention::CancelNewest,
        });
        engine.execute(&id, &cmd, &mut events);
    }
    Ok(crate::per_second(orders.len(), start.elapsed()))
}

/// Runs the benchmark on a devnet of its own and prints one JSON object.
pub fn run(tranche_exe: &Path, options: &Options) -> Result<()> {
    if options.traders < 2 || options.traders > TRADERS_MAX {
        bail!("traders must be 2 to {TRADERS_MAX}");
    }
    if options.orders == 0 || options.orders > 10_000_000 {
        bail!("orders must be 1 to 10,000,000");
    }
    crate::warn_if_debug();
    let (_tmp, mut devnet) = crate::devnet(tranche_exe, options.base_port, true)?;
    // The run signs as the TSP and the issuer to issue the token: their
    // services stop first, so no outbox races for their nonces.
    for role in ["tsp", "issuer"] {
        let s = service(devnet.file(), role)?;
        tranche_devnet::signal(u64::from(s.pid), "TERM");
    }
    let keys = [
        "devnet-kyc",
        "devnet-registry",
        "devnet-tsp",
        "devnet-appraiser",
        "devnet-issuer",
    ]
    .map(|o| devnet.open_key(o))
    .into_iter()
    .collect::<Result<Vec<Keypair>>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(options, devnet.file(), &keys));
    devnet.stop();
    println!("{}", result?);
    Ok(())
}

async fn measure(options: &Options, devnet: &DevnetFile, keys: &[Keypair]) -> Result<Value> {
    let (kyc, registry, tsp, appraiser, issuer) =
        (&keys[0], &keys[1], &keys[2], &keys[3], &keys[4]);
    let node = NodeClient::new(&devnet.nodes[2].api, None)?;
    let chain = node.status().await?.chain_id;
    let exchange = service(devnet, "exchange")?;
    let api = exchange.api.clone();
    let password = Path::new(&devnet.password_file);
    let n = options.traders;
    let par = n.min(64);
    let http = Services::new(par)?;
    let op = http.staff(exchange, 0, password).await?;

    eprintln!("setting up: {n} traders with KYC claims, exchange wallets bound to their DIDs");
    let traders: Vec<Person> = (0..n).map(|_| Person::new(kyc)).collect::<Result<_>>()?;
    let until_date: Date = "2099-12-31".parse()?;
    let claims = traders
        .iter()
        .map(|p| {
            let did: Did = p.did.parse().map_err(|e| anyhow!("{e:?}"))?;
            Ok(claim_until(&did, ClaimTopic::KYC, None, until_date))
        })
        .collect::<Result<Vec<Payload>>>()?;
    crate::send_in_order(&node, &chain, kyc, claims).await?;
    let sessions: Vec<(String, String)> = stream::iter(&traders)
        .map(|p| {
            let (http, api, chain) = (http.clone(), api.clone(), chain.clone());
            async move {
                let token = http.login(&api, &p.key, p.credentials.clone()).await?;
                let me = http
                    .call(
                        reqwest::Method::POST,
                        &format!("{api}/traders"),
                        Some(&token),
                        Some(&json!({})),
                    )
                    .await?;
                let wallet: tranche_types::WalletAddress = me["wallet"]
                    .as_str()
                    .ok_or_else(|| anyhow!("no wallet: {me}"))?
                    .parse()
                    .map_err(|e| anyhow!("{e:?}"))?;
                let did: Did = p.did.parse().map_err(|e| anyhow!("{e:?}"))?;
                let message = Ledger::binding_message(&wallet, &did);
                let signature = p
                    .key
                    .sign(tranche_crypto::Domain::DidControl, &chain, &message);
                http.call(
                    reqwest::Method::PUT,
                    &format!("{api}/traders/me/wallet"),
                    Some(&token),
                    Some(&json!({"wallet": wallet, "did": did, "did_signature": signature})),
                )
                .await?;
                Ok::<_, anyhow::Error>((token, wallet.to_string()))
            }
        })
        .buffered(par)
        .try_collect()
        .await?;
    until("every trader's wallet bound", || {
        let (http, api, sessions) = (http.clone(), api.clone(), &sessions);
        async move {
            for (token, _) in sessions {
                let me = http
                    .call(
                        reqwest::Method::GET,
                        &format!("{api}/traders/me"),
                        Some(token),
                        None,
                    )
                    .await?;
                if me["state"] != "active" {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    })
    .await?;

    eprintln!(
        "setting up: {TOKEN} issued to the sellers' exchange wallets, USD credited to the buyers"
    );
    let half = n / 2;
    let sellers: Vec<(tranche_types::WalletAddress, u128)> = sessions[..half]
        .iter()
        .map(|(_, w)| Ok((w.parse().map_err(|e| anyhow!("{e:?}"))?, SELLER_UNITS)))
        .collect::<Result<_>>()?;
    let total = SELLER_UNITS * half as u128;
    let owner: Did = traders[0].did.parse().map_err(|e| anyhow!("{e:?}"))?;
    let asset = "A-BENCH-X";
    let request = issuance_request("R-BENCH-X", asset, TOKEN, "devnet-issuer", &sellers, total);
    // Each organisation's transactions go in order; the services' last
    // anchors settle first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    crate::send_in_order(
        &node,
        &chain,
        registry,
        vec![record_ownership(asset, owner.clone())],
    )
    .await?;
    crate::send_in_order(
        &node,
        &chain,
        tsp,
        vec![register_asset(asset, owner, usd(total * 10_000))],
    )
    .await?;
    crate::send_in_order(
        &node,
        &chain,
        appraiser,
        vec![appraisal(asset, usd(total * 10_000))],
    )
    .await?;
    crate::send_in_order(
        &node,
        &chain,
        tsp,
        vec![Payload::RequestIssuance(request.clone())],
    )
    .await?;
    crate::send_in_order(&node, &chain, issuer, vec![execution(&request)]).await?;
    for (k, (_, _)) in sessions[half..].iter().enumerate() {
        let did = &traders[half + k].did;
        http.call(
            reqwest::Method::POST,
            &format!("{api}/accounts/credits"),
            Some(&op),
            Some(&json!({"did": did, "currency": "USD", "amount": "1000000000000", "reference": format!("BENCH-{k}")})),
        )
        .await?;
    }
    let instrument = format!("{TOKEN}/USD");
    until("the token listed", || {
        let (http, api, op) = (http.clone(), api.clone(), op.clone());
        async move {
            let m = http
                .call(
                    reqwest::Method::GET,
                    &format!("{api}/markets"),
                    Some(&op),
                    None,
                )
                .await?;
            Ok(m.as_array().is_some_and(|l| {
                l.iter()
                    .any(|x| x["token"] == TOKEN && x["status"] == "listed")
            }))
        }
    })
    .await?;
    until("the sellers' tokens seen", || {
        let (http, api, sessions) = (http.clone(), api.clone(), &sessions);
        async move {
            let me = http
                .call(
                    reqwest::Method::GET,
                    &format!("{api}/traders/me"),
                    Some(&sessions[0].0),
                    None,
                )
                .await?;
            Ok(me["balances"].as_array().is_some_and(|b| {
                b.iter()
                    .any(|x| x["asset"]["id"] == TOKEN && x["free"] != "0")
            }))
        }
    })
    .await?;

    let planned = workload(n, options.orders);
    let engine_per_s = engine_rate(&planned)?;
    eprintln!("measuring: {} orders over {n} WebSockets", planned.len());
    let ws_base = api.replacen("http://", "ws://", 1);
    let mut per_trader: Vec<Vec<Planned>> = vec![Vec::new(); n];
    for o in &planned {
        per_trader[o.trader].push(*o);
    }
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(planned.len())));
    let start = Instant::now();
    let tasks: Vec<_> = per_trader
        .into_iter()
        .enumerate()
        .map(|(t, orders)| {
            let url = format!("{ws_base}/ws?token={}", sessions[t].0);
            let (instrument, latencies) = (instrument.clone(), Arc::clone(&latencies));
            tokio::spawn(async move {
                let (socket, _) = tokio_tungstenite::connect_async(url).await?;
                let (mut sink, mut source) = socket.split();
                let total = orders.len();
                let mut mine: HashSet<u64> = HashSet::with_capacity(total);
                let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(WINDOW);
                let mut next = 0;
                // Up to WINDOW orders in flight; each new order id that
                // comes back acknowledges the oldest outstanding one (a
                // connection's orders are answered in the order sent).
                while mine.len() < total {
                    tokio::select! {
                        sent = async {
                            let o = orders[next];
                            let body = json!({"op": "place", "order": {
                                "instrument": instrument,
                                "side": if o.side == Side::Buy { "buy" } else { "sell" },
                                "price": o.price, "quantity": o.quantity}});
                            sink.send(Message::Text(body.to_string().into())).await
                        }, if next < total && sent_at.len() < WINDOW => {
                            sent?;
                            sent_at.push_back(Instant::now());
                            next += 1;
                        }
                        m = source.next() => {
                            let Some(m) = m else { bail!("the WebSocket closed") };
                            let Message::Text(text) = m? else { continue };
                            let v: Value = serde_json::from_str(text.as_str())?;
                            if v["type"] == "error" {
                                bail!("an order was refused: {v}");
                            }
                            let new = v["type"] == "order"
                                && v["id"].as_u64().is_some_and(|id| mine.insert(id));
                            if new {
                                let at = sent_at.pop_front().ok_or_else(|| anyhow!("an answer to no order"))?;
                                let us = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
                                latencies.lock().unwrap_or_else(|e| e.into_inner()).push(us);
                            }
                        }
                    }
                }
                Ok::<_, anyhow::Error>(mine.len())
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.context("a trader's task")??;
    }
    let elapsed = start.elapsed();
    let orders_per_s = crate::per_second(accepted, elapsed);

    eprintln!("measuring: every trade settled on chain");
    let waiting = Instant::now();
    let all = loop {
        let all = all_trades(&http, &api, &op).await?;
        if all.iter().all(|t| t["state"] != "settling") {
            break all;
        }
        if waiting.elapsed() > crate::people::STAGE_TIMEOUT {
            bail!(
                "trades still settling after {:?}",
                crate::people::STAGE_TIMEOUT
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let settled: Vec<&Value> = all.iter().filter(|t| t["state"] == "settled").collect();
    if settled.len() != all.len() {
        bail!(
            "{} of {} trades did not settle",
            all.len() - settled.len(),
            all.len()
        );
    }
    let matched_ms: Vec<u64> = settled.iter().filter_map(|t| t["at_ms"].as_u64()).collect();
    let decided_ms: Vec<u64> = settled
        .iter()
        .filter_map(|t| t["decided_ms"].as_u64())
        .collect();
    let mut settle_ms: Vec<u64> = matched_ms
        .iter()
        .zip(&decided_ms)
        .map(|(m, d)| d.saturating_sub(*m))
        .collect();
    settle_ms.sort_unstable();
    let span = decided_ms
        .iter()
        .max()
        .copied()
        .unwrap_or(0)
        .saturating_sub(matched_ms.iter().min().copied().unwrap_or(0))
        .max(1);
    let trades_per_s = settled.len() as u64 * 1_000 / span;
    let mut lat = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    lat.sort_unstable();
    let pct = |v: &[u64], p: usize| {
        v.get((v.len().saturating_sub(1)) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    Ok(json!({
        "bench": "exchange",
        "traders": n,
        "orders": accepted,
        "orders_per_s": orders_per_s,
        "engine_orders_per_s": engine_per_s,
        "trades": settled.len(),
        "trades_settled_per_s": trades_per_s,
        "ack_p50_us": pct(&lat, 50),
        "ack_p99_us": pct(&lat, 99),
        "settle_p50_ms": pct(&settle_ms, 50),
        "settle_p99_ms": pct(&settle_ms, 99),
    }))
}

/// The whole trade ledger, page by page.
async fn all_trades(http: &Services, api: &str, op: &str) -> Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = http
            .call(
                reqwest::Method::GET,
                &format!("{api}/trades?after={after}&limit=1000"),
                Some(op),
                None,
            )
            .await?;
        let page = page.as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else {
            return Ok(all);
        };
        after = last["id"].as_u64().unwrap_or(u64::MAX);
        all.extend(page);
    }
}
