//! Prometheus metrics every role service exports at `GET /metrics`:
//! requests and their latencies by route and status, how far the service is
//! behind the chain, and the depth of its queues.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The service's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// Finalized blocks the node has that the service has not applied.
    pub chain_lag: Gauge,
    /// The last block applied.
    pub cursor: Gauge,
    queues: Family<Labels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers the metrics.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tranche_service");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let chain_lag = Gauge::default();
        let cursor = Gauge::default();
        let queues = Family::<Labels, Gauge>::default();
        registry.register(
            "http_requests",
            "API requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "API request latency by route",
            latency.clone(),
        );
        registry.register(
            "chain_lag_blocks",
            "finalized blocks not yet applied",
            chain_lag.clone(),
        );
        registry.register(
            "chain_cursor_height",
            "the last block applied",
            cursor.clone(),
        );
        registry.register("queue_depth", "items waiting, by queue", queues.clone());
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            latency,
            chain_lag,
            cursor,
            queues,
        }
    }

    /// Counts one request.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("route".into(), route.into()),
                ("status".into(), status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("route".into(), route.into())])
            .observe(seconds);
    }

    /// Sets the depth of `queue`.
    pub fn queue(&self, queue: &str, depth: usize) {
        self.queues
            .get_or_create(&vec![("queue".into(), queue.into())])
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}
