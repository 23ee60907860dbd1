//! Prometheus metrics, rendered in the text format at `/metrics`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `paradox_requests_total` | transport, route, status | calls answered |
//! | `paradox_request_duration_seconds` | transport, route, status | latency histogram |
//! | `paradox_collection_points` | collection | live points |
//! | `paradox_collection_bytes` | collection | segment + WAL bytes |
//! | `paradox_wal_bytes` | collection | write-ahead log bytes |
//! | `paradox_index_builds_pending` | collection | background queue depth (graph builds) |
//! | `paradox_maintenance_queue_depth` | collection | background queue depth (seals, merges, compactions) |
//! | `paradox_growing_bytes` | collection | bytes held by the growing segment |
//! | `paradox_write_queue_depth` | - | writes admitted and not yet answered |
//! | `paradox_write_queue_capacity` | - | the write queue's limit |
//!
//! Per-collection gauges are refreshed from the service at each scrape.

use crate::api::CollectionDescription;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The server's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    points: IntGaugeVec,
    bytes: IntGaugeVec,
    wal_bytes: IntGaugeVec,
    index_builds: IntGaugeVec,
    maintenance_queue: IntGaugeVec,
    growing_bytes: IntGaugeVec,
    /// Writes admitted and not yet answered.
    pub write_queue_depth: IntGauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new(write_queue_capacity: usize) -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("paradox_requests_total", "Requests answered."),
            &["transport", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("paradox_request_duration_seconds", "Request latency.").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            ),
            &["transport", "route", "status"],
        )
        .expect("valid metric");
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["collection"]).expect("valid metric")
        };
        let points = gauge("paradox_collection_points", "Live points per collection.");
        let bytes = gauge(
            "paradox_collection_bytes",
            "Segment and WAL bytes per collection.",
        );
        let wal_bytes = gauge("paradox_wal_bytes", "Write-ahead log bytes per collection.");
        let index_builds = gauge(
            "paradox_index_builds_pending",
            "Background index builds queued or running per collection.",
        );
        let maintenance_queue = gauge(
            "paradox_maintenance_queue_depth",
            "Background seals, merges and compactions due or running per collection.",
        );
        let growing_bytes = gauge(
            "paradox_growing_bytes",
            "Bytes held by the growing (in-RAM) segment per collection.",
        );
        let write_queue_depth = IntGauge::new(
            "paradox_write_queue_depth",
            "Writes admitted and not yet answered.",
        )
        .expect("valid metric");
        let capacity = IntGauge::new("paradox_write_queue_capacity", "Write queue limit.")
            .expect("valid metric");
        capacity.set(write_queue_capacity as i64);
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(points.clone()),
            Box::new(bytes.clone()),
            Box::new(wal_bytes.clone()),
            Box::new(index_builds.clone()),
            Box::new(maintenance_queue.clone()),
            Box::new(growing_bytes.clone()),
            Box::new(write_queue_depth.clone()),
            Box::new(capacity.clone()),
        ] {
            registry.register(collector).expect("unique metric");
        }
        Metrics {
            registry,
            requests,
            latency,
            points,
            bytes,
            wal_bytes,
            index_builds,
            maintenance_queue,
            growing_bytes,
            write_queue_depth,
        }
    }

    /// Records one answered request.
    pub fn observe(&self, transport: &str, route: &str, status: &str, seconds: f64) {
        let labels = [transport, route, status];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// Renders the text exposition format, with per-collection gauges set from
    /// `collections`.
    pub fn render(&self, collections: &[CollectionDescription]) -> String {
        for gauge in [
            &self.points,
            &self.bytes,
            &self.wal_bytes,
            &self.index_builds,
            &self.maintenance_queue,
            &self.growing_bytes,
        ] {
            gauge.reset();
        }
        for c in collections {
            let name = [c.name.as_str()];
            self.points.with_label_values(&name).set(c.points as i64);
            self.bytes
                .with_label_values(&name)
                .set((c.segment_bytes + c.wal_bytes) as i64);
            self.wal_bytes
                .with_label_values(&name)
                .set(c.wal_bytes as i64);
            self.index_builds
                .with_label_values(&name)
                .set(c.pending_index_builds as i64);
            self.maintenance_queue
                .with_label_values(&name)
                .set(c.maintenance_queue as i64);
            self.growing_bytes
                .with_label_values(&name)
                .set(c.growing_bytes as i64);
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}
