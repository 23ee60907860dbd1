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
//! | `paradox_living_space_points` | collection, space | points a living collection's space holds |
//! | `paradox_living_coverage` | collection, space | share of the first space's points the space holds |
//! | `paradox_living_default_space` | collection, space | 1 for the default space, else 0 |
//! | `paradox_living_migration_migrated_points` | collection, space | points the running or last migration into `space` re-encoded or adapted |
//! | `paradox_living_migration_skipped_points` | collection, space | points it could not migrate |
//! | `paradox_living_migration_total_points` | collection, space | points it had to migrate when it started |
//! | `paradox_living_migration_running` | collection, space | 1 while it runs, else 0 |
//! | `paradox_living_drift_score` | collection, space, test | latest drift report's score (`mean_shift`, `mmd`, `auc`) |
//! | `paradox_living_drift_threshold` | collection, space, test | its threshold |
//! | `paradox_living_drift_flagged` | collection, space, test | 1 when the score is over its threshold |
//! | `paradox_living_drift_drifted` | collection, space | the report's verdict (the MMD test rejects) |
//! | `paradox_living_drift_p_value` | collection, space | the MMD test's p-value |
//! | `paradox_living_drift_computed_seconds` | collection, space | when the report was computed (Unix time) |
//!
//! Per-collection gauges are refreshed from the service at each scrape. Drift gauges
//! hold the latest report computed (`POST .../living/drift` or `Living/Drift`) since the
//! server started: a scrape never computes one. The living gauges are reset and
//! refilled at each scrape, so a removed space's series (its points, coverage, drift,
//! and the last migration's when it went into the space) are gone from the next one.

use crate::api::{CollectionDescription, LivingMetrics};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
    living: LivingGauges,
    /// Writes admitted and not yet answered.
    pub write_queue_depth: IntGauge,
}

/// The gauges of living collections (spaces, migrations, drift).
#[derive(Debug, Clone)]
struct LivingGauges {
    space_points: IntGaugeVec,
    coverage: GaugeVec,
    default_space: IntGaugeVec,
    migrated: IntGaugeVec,
    skipped: IntGaugeVec,
    total: IntGaugeVec,
    running: IntGaugeVec,
    drift_score: GaugeVec,
    drift_threshold: GaugeVec,
    drift_flagged: IntGaugeVec,
    drift_drifted: IntGaugeVec,
    drift_p_value: GaugeVec,
    drift_computed: GaugeVec,
}

impl LivingGauges {
    fn new(registry: &Registry) -> LivingGauges {
        let int = |name: &str, help: &str, labels: &[&str]| {
            let gauge = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("unique metric");
            gauge
        };
        let float = |name: &str, help: &str, labels: &[&str]| {
            let gauge = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("unique metric");
            gauge
        };
        let space = &["collection", "space"];
        let test = &["collection", "space", "test"];
        const DRIFT: &str = "Updated whenever a drift report of the space is computed \
                             (POST /v1/collections/{name}/living/drift, gRPC Living/Drift); \
                             absent until one is.";
        LivingGauges {
            space_points: int(
                "paradox_living_space_points",
                "Points each space of a living collection holds.",
                space,
            ),
            coverage: float(
                "paradox_living_coverage",
                "Share of the first space's points each space holds (0 to 1).",
                space,
            ),
            default_space: int(
                "paradox_living_default_space",
                "1 for the space searches use when they name none, 0 for the others.",
                space,
            ),
            migrated: int(
                "paradox_living_migration_migrated_points",
                "Points the running or last migration into `space` re-encoded or mapped \
                 through an adapter.",
                space,
            ),
            skipped: int(
                "paradox_living_migration_skipped_points",
                "Points the running or last migration into `space` could not migrate (no \
                 text, no adapter).",
                space,
            ),
            total: int(
                "paradox_living_migration_total_points",
                "Points the running or last migration into `space` had to migrate when it \
                 started.",
                space,
            ),
            running: int(
                "paradox_living_migration_running",
                "1 while a migration into `space` runs, else 0.",
                space,
            ),
            drift_score: float(
                "paradox_living_drift_score",
                &format!("Latest drift report's score per test (mean_shift, mmd, auc). {DRIFT}"),
                test,
            ),
            drift_threshold: float(
                "paradox_living_drift_threshold",
                &format!("Latest drift report's threshold per test. {DRIFT}"),
                test,
            ),
            drift_flagged: int(
                "paradox_living_drift_flagged",
                &format!("1 when the latest drift report's score is over its threshold. {DRIFT}"),
                test,
            ),
            drift_drifted: int(
                "paradox_living_drift_drifted",
                &format!(
                    "1 when the latest drift report's MMD permutation test rejects \"same \
                     distribution\" (the verdict). {DRIFT}"
                ),
                space,
            ),
            drift_p_value: float(
                "paradox_living_drift_p_value",
                &format!("Latest drift report's MMD p-value. {DRIFT}"),
                space,
            ),
            drift_computed: float(
                "paradox_living_drift_computed_seconds",
                &format!("When the latest drift report was computed (Unix time). {DRIFT}"),
                space,
            ),
        }
    }

    fn set(&self, living: &[LivingMetrics]) {
        for gauge in [
            &self.space_points,
            &self.default_space,
            &self.migrated,
            &self.skipped,
            &self.total,
            &self.running,
            &self.drift_flagged,
            &self.drift_drifted,
        ] {
            gauge.reset();
        }
        for gauge in [
            &self.coverage,
            &self.drift_score,
            &self.drift_threshold,
            &self.drift_p_value,
            &self.drift_computed,
        ] {
            gauge.reset();
        }
        for l in living {
            let c = l.collection.as_str();
            for s in &l.spaces {
                let labels = [c, s.space.as_str()];
                self.space_points
                    .with_label_values(&labels)
                    .set(s.points as i64);
                self.coverage.with_label_values(&labels).set(s.coverage);
                self.default_space
                    .with_label_values(&labels)
                    .set(i64::from(s.default));
            }
            if let Some(m) = &l.migration {
                let labels = [c, m.to.as_str()];
                self.migrated
                    .with_label_values(&labels)
                    .set(m.migrated as i64);
                self.skipped
                    .with_label_values(&labels)
                    .set(m.skipped as i64);
                self.total
                    .with_label_values(&labels)
                    .set(m.pending_at_start as i64);
                self.running
                    .with_label_values(&labels)
                    .set(i64::from(m.phase == "running"));
            }
            for d in &l.drift {
                let space = d.space.as_str();
                for (test, score, threshold, flagged) in [
                    (
                        "mean_shift",
                        d.mean_shift,
                        d.mean_shift_threshold,
                        d.mean_shift_flagged,
                    ),
                    ("mmd", d.mmd, d.mmd_threshold, d.mmd_flagged),
                    ("auc", d.auc, d.auc_threshold, d.auc_flagged),
                ] {
                    let labels = [c, space, test];
                    self.drift_score
                        .with_label_values(&labels)
                        .set(f64::from(score));
                    self.drift_threshold
                        .with_label_values(&labels)
                        .set(f64::from(threshold));
                    self.drift_flagged
                        .with_label_values(&labels)
                        .set(i64::from(flagged));
                }
                let labels = [c, space];
                self.drift_drifted
                    .with_label_values(&labels)
                    .set(i64::from(d.drifted));
                self.drift_p_value
                    .with_label_values(&labels)
                    .set(f64::from(d.mmd_p_value));
                self.drift_computed
                    .with_label_values(&labels)
                    .set(d.computed_at as f64 / 1000.0);
            }
        }
    }
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
        let living = LivingGauges::new(&registry);
        Metrics {
            registry,
            living,
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
    /// `collections` and living collections' gauges from `living`.
    pub fn render(
        &self,
        collections: &[CollectionDescription],
        living: &[LivingMetrics],
    ) -> String {
        self.living.set(living);
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
