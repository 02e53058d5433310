//! Transfers (C-3, F6-9): history by token, wallet and time, and the live
//! stream custodians and regulators follow.

use super::{at, parse, Answer, ApiError, Shared};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use futures_util::StreamExt as _;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use tokio_stream::wrappers::BroadcastStream;
use tranche_api::node::{At, TransferEvent, Transfers};
use tranche_api::{ErrorBody, TRANSFERS_DEFAULT, TRANSFERS_MAX};
use tranche_consensus::Finalized;
use tranche_ledger::{LedgerEvent, TransferRecord};
use tranche_storage::TransferFilter;
use tranche_types::{Timestamp, TokenId, WalletAddress};

/// Filters for transfer queries and streams.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferQuery {
    token: Option<String>,
    wallet: Option<String>,
    /// From this time on, in ms since the epoch.
    since: Option<u64>,
    /// Before this time, in ms since the epoch.
    until: Option<u64>,
    limit: Option<usize>,
}

impl TransferQuery {
    fn filter(&self) -> Result<(Option<TokenId>, Option<WalletAddress>), ApiError> {
        let token = self
            .token
            .as_deref()
            .map(|t| parse::<TokenId>("token", t))
            .transpose()?;
        let wallet = self
            .wallet
            .as_deref()
            .map(|w| parse::<WalletAddress>("wallet address", w))
            .transpose()?;
        Ok((token, wallet))
    }
}

/// Finalized transfers, oldest first, by token and/or wallet and block time (C-3, F6-9).
#[utoipa::path(get, path = "/transfers", tag = "transfers",
    params(
        ("token" = Option<String>, Query, description = "Only this token's transfers"),
        ("wallet" = Option<String>, Query, description = "Only transfers from or to this wallet"),
        ("since" = Option<u64>, Query, description = "Blocks from this time on, in ms since 1970"),
        ("until" = Option<u64>, Query, description = "Blocks before this time, in ms since 1970"),
        ("limit" = Option<usize>, Query, description = "At most this many (1 to 1000, default 100)")),
    responses(
        (status = 200, description = "The transfers found", body = At<Transfers>),
        (status = 400, description = "A bad filter", body = ErrorBody)))]
pub(super) async fn transfers(
    State(s): State<Arc<Shared>>,
    query: Result<Query<TransferQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer<At<Transfers>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (token, wallet) = q.filter()?;
    let limit = q.limit.unwrap_or(TRANSFERS_DEFAULT);
    if !(1..=TRANSFERS_MAX).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {TRANSFERS_MAX}"
        )));
    }
    let view = s.view();
    let from_height = match q.since {
        Some(t) => s.store.height_at(Timestamp(t))?,
        None => 1,
    };
    let to_height = match q.until {
        Some(t) => s.store.height_at(Timestamp(t))?.saturating_sub(1),
        None => view.height,
    }
    .min(view.height);
    let filter = TransferFilter {
        token,
        wallet,
        from_height,
        to_height,
    };
    let found: Vec<TransferRecord> = if from_height > to_height {
        Vec::new()
    } else {
        s.store.transfers(&filter, limit)?
    };
    at(
        &view,
        Transfers {
            transfers: found,
            from_height,
            to_height,
        },
    )
}

fn transfer_events(
    f: &Finalized,
    token: &Option<TokenId>,
    wallet: &Option<WalletAddress>,
) -> Vec<Event> {
    f.events
        .iter()
        .filter_map(|e| match e {
            LedgerEvent::Transfer(t) => Some(t),
            _ => None,
        })
        .filter(|t| t.matches(token.as_ref(), wallet.as_ref()))
        .map(|t| {
            Event::default()
                .event("transfer")
                .json_data(TransferEvent {
                    transfer: t.clone(),
                    block_time: f.block.header.time,
                    state_root: f.state_root,
                })
                .expect("a transfer serializes")
        })
        .collect()
}

/// Finalized transfers live, as server-sent `transfer` events; `lagged`
/// says how many blocks a slow reader missed (catch up from `/transfers`).
#[utoipa::path(get, path = "/events", tag = "transfers",
    params(
        ("token" = Option<String>, Query, description = "Only this token's transfers"),
        ("wallet" = Option<String>, Query, description = "Only transfers from or to this wallet")),
    responses(
        (status = 200, description = "A stream of `transfer` events", body = TransferEvent, content_type = "text/event-stream"),
        (status = 400, description = "A bad filter", body = ErrorBody)))]
pub(super) async fn events(
    State(s): State<Arc<Shared>>,
    query: Result<Query<TransferQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if q.since.is_some() || q.until.is_some() || q.limit.is_some() {
        return Err(ApiError::bad_request(
            "the live stream takes only token and wallet; query /transfers for history",
        ));
    }
    let (token, wallet) = q.filter()?;
    let stream = BroadcastStream::new(s.events.subscribe()).flat_map(move |item| {
        let events = match item {
            Ok(f) => transfer_events(&f, &token, &wallet),
            // A slow reader missed blocks: tell it to catch up from /transfers.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                vec![Event::default().event("lagged").data(n.to_string())]
            }
        };
        futures_util::stream::iter(events.into_iter().map(Ok))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
