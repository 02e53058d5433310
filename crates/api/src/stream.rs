//! The node's live stream of finalized transfers (`GET /events`), read
//! one server-sent event at a time.

use crate::client::ClientError;
use crate::node::TransferEvent;

/// What the live stream says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A finalized transfer.
    Transfer(Box<TransferEvent>),
    /// This reader was too slow and missed this many blocks; catch up from
    /// [`crate::client::NodeClient::transfers`].
    Lagged(u64),
}

/// Server-sent events from `GET /events`, one [`NodeEvent`] at a time.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    event: String,
    base: String,
}

impl EventStream {
    /// The stream of `response`, from the node at `base`.
    pub(crate) fn new(response: reqwest::Response, base: String) -> EventStream {
        EventStream {
            response,
            buffer: Vec::new(),
            event: String::new(),
            base,
        }
    }
}

/// The longest line of the stream kept (a transfer event is far shorter).
const EVENT_LINE_BYTES_MAX: usize = 64 * 1024;

impl EventStream {
    /// The next event; `None` when the node ends the stream.
    pub async fn next(&mut self) -> Result<Option<NodeEvent>, ClientError> {
        loop {
            while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\r', '\n']);
                if let Some(name) = line.strip_prefix("event:") {
                    self.event = name.trim().to_string();
                } else if let Some(data) = line.strip_prefix("data:") {
                    let data = data.trim();
                    let unexpected = |reason: String| ClientError::Unexpected {
                        path: "/events".into(),
                        reason,
                    };
                    match self.event.as_str() {
                        "transfer" => {
                            let event: TransferEvent = serde_json::from_str(data)
                                .map_err(|e| unexpected(e.to_string()))?;
                            return Ok(Some(NodeEvent::Transfer(Box::new(event))));
                        }
                        "lagged" => {
                            let n = data.parse().map_err(|_| unexpected(data.to_string()))?;
                            return Ok(Some(NodeEvent::Lagged(n)));
                        }
                        _ => {}
                    }
                }
            }
            if self.buffer.len() > EVENT_LINE_BYTES_MAX {
                return Err(ClientError::Unexpected {
                    path: "/events".into(),
                    reason: format!("a line longer than {EVENT_LINE_BYTES_MAX} bytes"),
                });
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(ClientError::Unreachable {
                        url: self.base.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }
}
