//! What every subcommand shares: the global flags, opening the data directory, and turning
//! command-line strings (metrics, ids, filters) into engine types with helpful errors.

use anyhow::{anyhow, bail, ensure, Context, Result};
use clap::{Args, ValueEnum};
use paradox_engine::{Collection, Engine, EngineError, EngineOptions, Filter, FsyncPolicy, Metric};
use std::path::PathBuf;
use std::sync::Arc;

/// Flags accepted by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory holding the collections (created if missing).
    #[arg(
        long,
        global = true,
        env = "PARADOX_DATA_DIR",
        default_value = "./paradox-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// When writes are fsynced: on every write, on a short interval (group commit), or
    /// never (the OS decides). Default: the engine's (interval).
    #[arg(long, global = true, value_enum, value_name = "POLICY")]
    pub fsync: Option<FsyncArg>,
}

/// `--fsync` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    /// fsync before acknowledging each write.
    Always,
    /// Group commit: fsync on a short interval.
    Interval,
    /// Leave flushing to the operating system.
    Never,
}

impl FsyncArg {
    /// The engine's policy for this flag value.
    pub fn policy(self) -> FsyncPolicy {
        match self {
            FsyncArg::Always => FsyncPolicy::Always,
            FsyncArg::Interval => FsyncPolicy::default(),
            FsyncArg::Never => FsyncPolicy::Never,
        }
    }

    /// The flag's spelling, for reports.
    pub fn name(self) -> &'static str {
        match self {
            FsyncArg::Always => "always",
            FsyncArg::Interval => "interval",
            FsyncArg::Never => "never",
        }
    }
}

/// `--metric` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Cosine similarity (vectors are normalised on the way in).
    Cosine,
    /// Inner product.
    Dot,
    /// Euclidean distance (scores are squared distances, lower is closer).
    #[value(alias = "euclidean")]
    L2,
}

impl MetricArg {
    /// The engine's metric for this flag value.
    pub fn metric(self) -> Metric {
        match self {
            MetricArg::Cosine => Metric::Cosine,
            MetricArg::Dot => Metric::Dot,
            MetricArg::L2 => Metric::L2,
        }
    }
}

impl GlobalArgs {
    /// Opens (creating if needed) the data directory with the chosen fsync policy.
    pub fn open_engine(&self) -> Result<Engine> {
        self.open_engine_with(self.fsync.map(FsyncArg::policy))
    }

    /// Opens a data directory that must already exist: for commands that only read, so a
    /// mistyped `--data-dir` is reported instead of silently creating an empty store.
    pub fn open_existing_engine(&self) -> Result<Engine> {
        ensure!(
            self.data_dir.is_dir(),
            "data directory {} does not exist (pass --data-dir or set PARADOX_DATA_DIR; \
             `paradox demo` or `paradox collection create` make one)",
            self.data_dir.display()
        );
        self.open_engine()
    }

    /// Opens the data directory with `fsync` overriding the engine's default policy.
    pub fn open_engine_with(&self, fsync: Option<FsyncPolicy>) -> Result<Engine> {
        let mut options = EngineOptions::default();
        if let Some(policy) = fsync {
            options.fsync = policy;
        }
        Engine::open_with(&self.data_dir, options)
            .with_context(|| format!("cannot open data directory {}", self.data_dir.display()))
    }
}

/// Opens collection `name`, and when it does not exist says what does.
pub fn open_collection(engine: &Engine, name: &str) -> Result<Arc<Collection>> {
    match engine.collection(name) {
        Ok(collection) => Ok(collection),
        Err(EngineError::UnknownCollection(..)) => {
            let existing = engine.list_collections();
            let hint = if existing.is_empty() {
                "it has no collections yet; create one with `paradox collection create`".to_string()
            } else {
                format!("it has: {}", existing.join(", "))
            };
            bail!(
                "collection `{name}` not found in {} ({hint})",
                engine.root().display()
            )
        }
        Err(err) => Err(err).with_context(|| format!("cannot open collection `{name}`")),
    }
}

/// Parses a `--filter` argument (JSON) into an engine filter.
pub fn parse_filter(json: &str) -> Result<Filter> {
    Filter::from_json_str(json).map_err(|err| {
        anyhow!(
            "invalid --filter: {err}\n  examples: '{{\"key\": \"category\", \"eq\": \"news\"}}'\n            \
             '{{\"and\": [{{\"key\": \"year\", \"range\": {{\"gte\": 2010}}}}, \
             {{\"key\": \"tags\", \"in\": [\"a\", \"b\"]}}]}}'"
        )
    })
}
