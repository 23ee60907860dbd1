//! Server configuration: defaults, then a TOML file, then `PARADOX_*` environment
//! variables, then command-line flags (applied by the caller on the returned struct).
//! Every field has a default, so `ServerConfig::default()` starts a working server.
//!
//! ```toml
//! data_dir = "./paradox-data"
//! rest_addr = "127.0.0.1:8333"
//! grpc_addr = "127.0.0.1:8334"
//!
//! [limits]
//! max_batch = 10000
//!
//! [[auth.keys]]
//! name = "ops"
//! key = "s3cret"
//! role = "admin"
//! ```
//!
//! The full list of keys and variables is in `docs/server.md`.

use crate::auth::Role;
use paradox_engine::{EngineOptions, FsyncPolicy};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything `paradox serve` needs to know.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Directory holding the collections.
    pub data_dir: PathBuf,
    /// WAL fsync policy: `always`, `interval` or `never`.
    pub fsync: String,
    /// REST listen address.
    pub rest_addr: SocketAddr,
    /// gRPC listen address; `None` (or `PARADOX_GRPC_ADDR=off`) disables gRPC.
    pub grpc_addr: Option<SocketAddr>,
    /// Where snapshot files are kept (default: `<data_dir>/snapshots`).
    pub snapshots_dir: Option<PathBuf>,
    /// Log format on stderr: `text` or `json`.
    pub log_format: String,
    /// Size and rate limits.
    pub limits: Limits,
    /// API keys; none configured = authentication off.
    pub auth: AuthConfig,
    /// TLS for both listeners; off unless both files are given.
    pub tls: Option<TlsConfig>,
    /// JSON-lines audit log of every mutating call; off when unset.
    pub audit_log: Option<PathBuf>,
    /// Routes of the paradoxlf 0.17 shard server.
    pub legacy: LegacyConfig,
    /// Segment maintenance: when the growing segment is sealed, when sealed ones merge.
    pub storage: StorageConfig,
    /// Living collections: where encoders find their model files.
    pub lifecycle: LifecycleConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./paradox-data"),
            fsync: "interval".into(),
            rest_addr: SocketAddr::from(([127, 0, 0, 1], 8333)),
            grpc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8334))),
            snapshots_dir: None,
            log_format: "text".into(),
            limits: Limits::default(),
            auth: AuthConfig::default(),
            tls: None,
            audit_log: None,
            legacy: LegacyConfig::default(),
            storage: StorageConfig::default(),
            lifecycle: LifecycleConfig::default(),
        }
    }
}

/// Living collections (`paradox-lifecycle`) served over the network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// Directory holding the MiniLM model files (`model.safetensors`, `tokenizer.json`,
    /// `config.json`) for `minilm` encoders whose space names no directory of its own.
    /// Unset: `$PARADOX_MINILM_DIR`, else `.cache/models/all-MiniLM-L6-v2` under the
    /// source tree when it exists. `hashing:DIM` encoders need no files.
    pub model_dir: Option<PathBuf>,
}

/// Segment maintenance knobs (the engine's `EngineOptions` of the same names).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Bytes in a collection's growing (RAM) segment before the background worker seals
    /// it into a segment file: bounds that segment's memory and exact-scan cost.
    pub seal_bytes: usize,
    /// Sealed segments of one size tier merged together (0 or 1: never merge).
    pub merge_factor: usize,
    /// Segments at or above this many live bytes are not merged with others.
    pub max_merge_bytes: u64,
    /// A sealed segment is rewritten without its deleted rows once they pass this
    /// fraction of its rows (above 1: never).
    pub compact_deleted_fraction: f64,
}

/// The server's growing segment: a quarter of the engine's default. A server takes writes
/// and searches at once, and every search scans the growing segment exactly: 8 MiB (about
/// 5,400 rows of 384 floats) keeps that scan well under a millisecond and the resident set
/// within a few percent of its level while writes flow (the 10-minute soak in
/// `bench/server.sh`).
pub const SERVER_SEAL_BYTES: usize = 8 << 20;
/// The server rewrites a segment once a tenth of its rows are deleted (engine default: a
/// fifth): updates leave old versions behind, and a rewrite keeps the segment's graph
/// (`HnswIndex::compacted`), so reclaiming them early is cheap.
pub const SERVER_COMPACT_DELETED_FRACTION: f64 = 0.1;

impl Default for StorageConfig {
    fn default() -> Self {
        let engine = EngineOptions::default();
        StorageConfig {
            seal_bytes: SERVER_SEAL_BYTES,
            merge_factor: engine.merge_factor,
            max_merge_bytes: engine.max_merge_bytes,
            compact_deleted_fraction: SERVER_COMPACT_DELETED_FRACTION,
        }
    }
}

/// Size, count and time limits. Requests beyond them get a 4xx naming the limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body (REST) or message (gRPC), in bytes.
    pub max_body_bytes: usize,
    /// Most points in one upsert, ids in one get/delete, searches in one batch.
    pub max_batch: usize,
    /// Largest `k` of one search (and page size of one scroll).
    pub max_k: usize,
    /// Largest dimension a collection may be created with.
    pub max_dimension: usize,
    /// Per-request time limit, in milliseconds.
    pub request_timeout_ms: u64,
    /// Writes admitted at once (running or waiting for the engine); more get 429.
    pub write_queue: usize,
    /// Largest snapshot file accepted by an upload, in bytes (uploads are streamed to
    /// disk, so this bounds disk use, not memory).
    pub max_snapshot_bytes: u64,
    /// Longest raw text (in UTF-8 bytes) a living collection's text write or text search
    /// takes.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 << 20,
            max_batch: 10_000,
            max_k: 1_000,
            max_dimension: 4_096,
            request_timeout_ms: 30_000,
            write_queue: 256,
            max_snapshot_bytes: 16 << 30,
            max_text_bytes: 64 << 10,
        }
    }
}

/// API keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The accepted keys. Empty: every request is anonymous and allowed everything.
    pub keys: Vec<ApiKeyConfig>,
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds the key: written to the audit log, never the key itself.
    pub name: String,
    /// The secret, as clients send it.
    pub key: String,
    /// What it may do.
    pub role: Role,
    /// Collections it may touch; absent = all.
    #[serde(default)]
    pub collections: Option<Vec<String>>,
}

/// PEM files for TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The paradoxlf 0.17 `ShardServer` routes (`GET /`, `POST /add`, `POST /query`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegacyConfig {
    /// Serve the legacy routes.
    pub enabled: bool,
    /// Node id reported by `GET /` (the old `--id`).
    pub id: String,
    /// Collection the legacy routes use (created on start with `dimension`, metric l2).
    pub collection: String,
    /// Vector dimension of that collection (the old `--dimension`).
    pub dimension: usize,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        LegacyConfig {
            enabled: false,
            id: "node_x".into(),
            collection: "legacy".into(),
            dimension: 128,
        }
    }
}

/// A configuration that could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML file is malformed or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// An environment variable or value is invalid.
    #[error("invalid {name}: {message}")]
    Invalid {
        /// The variable or key.
        name: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

fn invalid(name: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_string(),
        message: message.into(),
    }
}

impl ServerConfig {
    /// Reads a TOML file (every key optional).
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Loads the config: `file` if given, else `PARADOX_CONFIG` if set, else defaults;
    /// then `PARADOX_*` overrides from `env` (pass `std::env::vars()`).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServerConfig, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let from_env = env
            .iter()
            .find(|(k, _)| k == "PARADOX_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let mut config = match file.map(Path::to_path_buf).or(from_env) {
            Some(path) => ServerConfig::from_file(&path)?,
            None => ServerConfig::default(),
        };
        for (name, value) in &env {
            config.apply_env(name, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Applies one `PARADOX_*` variable; other names are ignored.
    pub fn apply_env(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
            value
                .trim()
                .parse()
                .map_err(|_| invalid(name, format!("expected a number, got `{value}`")))
        }
        fn addr(name: &str, value: &str) -> Result<SocketAddr, ConfigError> {
            value
                .trim()
                .parse()
                .map_err(|_| invalid(name, format!("expected HOST:PORT, got `{value}`")))
        }
        match name {
            "PARADOX_DATA_DIR" => self.data_dir = PathBuf::from(value),
            "PARADOX_FSYNC" => self.fsync = value.to_string(),
            "PARADOX_REST_ADDR" => self.rest_addr = addr(name, value)?,
            "PARADOX_GRPC_ADDR" if value == "off" => self.grpc_addr = None,
            "PARADOX_GRPC_ADDR" => self.grpc_addr = Some(addr(name, value)?),
            "PARADOX_SNAPSHOTS_DIR" => self.snapshots_dir = Some(PathBuf::from(value)),
            "PARADOX_LOG_FORMAT" => self.log_format = value.to_string(),
            "PARADOX_AUDIT_LOG" => self.audit_log = Some(PathBuf::from(value)),
            "PARADOX_MAX_BODY_BYTES" => self.limits.max_body_bytes = num(name, value)?,
            "PARADOX_MAX_BATCH" => self.limits.max_batch = num(name, value)?,
            "PARADOX_MAX_K" => self.limits.max_k = num(name, value)?,
            "PARADOX_MAX_DIMENSION" => self.limits.max_dimension = num(name, value)?,
            "PARADOX_REQUEST_TIMEOUT_MS" => self.limits.request_timeout_ms = num(name, value)?,
            "PARADOX_WRITE_QUEUE" => self.limits.write_queue = num(name, value)?,
            "PARADOX_MAX_SNAPSHOT_BYTES" => self.limits.max_snapshot_bytes = num(name, value)?,
            "PARADOX_MAX_TEXT_BYTES" => self.limits.max_text_bytes = num(name, value)?,
            // The variable the lifecycle crate, the CLI and Python read too.
            "PARADOX_MINILM_DIR" if !value.is_empty() => {
                self.lifecycle.model_dir = Some(PathBuf::from(value))
            }
            "PARADOX_SEAL_BYTES" => self.storage.seal_bytes = num(name, value)?,
            "PARADOX_MERGE_FACTOR" => self.storage.merge_factor = num(name, value)?,
            "PARADOX_MAX_MERGE_BYTES" => self.storage.max_merge_bytes = num(name, value)?,
            "PARADOX_COMPACT_DELETED_FRACTION" => {
                self.storage.compact_deleted_fraction = num(name, value)?
            }
            "PARADOX_API_KEY" => self.auth.keys.push(ApiKeyConfig {
                name: "env-admin".into(),
                key: value.to_string(),
                role: Role::Admin,
                collections: None,
            }),
            "PARADOX_TLS_CERT" => {
                let key = self.tls.as_ref().map(|t| t.key.clone()).unwrap_or_default();
                self.tls = Some(TlsConfig {
                    cert: PathBuf::from(value),
                    key,
                });
            }
            "PARADOX_TLS_KEY" => {
                let cert = self
                    .tls
                    .as_ref()
                    .map(|t| t.cert.clone())
                    .unwrap_or_default();
                self.tls = Some(TlsConfig {
                    cert,
                    key: PathBuf::from(value),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// The engine options this configuration asks for (fsync policy and storage).
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            fsync: FsyncPolicy::parse(&self.fsync).unwrap_or_default(),
            seal_bytes: self.storage.seal_bytes,
            merge_factor: self.storage.merge_factor,
            max_merge_bytes: self.storage.max_merge_bytes,
            compact_deleted_fraction: self.storage.compact_deleted_fraction,
            ..EngineOptions::default()
        }
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.fsync.as_str(), "always" | "interval" | "never") {
            return Err(invalid(
                "fsync",
                format!("expected always, interval or never, got `{}`", self.fsync),
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(invalid(
                "log_format",
                format!("expected text or json, got `{}`", self.log_format),
            ));
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.max_body_bytes", l.max_body_bytes as u64),
            ("limits.max_batch", l.max_batch as u64),
            ("limits.max_k", l.max_k as u64),
            ("limits.max_dimension", l.max_dimension as u64),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.write_queue", l.write_queue as u64),
            ("limits.max_snapshot_bytes", l.max_snapshot_bytes),
            ("limits.max_text_bytes", l.max_text_bytes as u64),
        ] {
            if value == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        let st = &self.storage;
        if st.seal_bytes < 1 << 20 {
            return Err(invalid(
                "storage.seal_bytes",
                format!("must be at least 1048576 (1 MiB), got {}", st.seal_bytes),
            ));
        }
        if !(st.compact_deleted_fraction.is_finite() && st.compact_deleted_fraction > 0.0) {
            return Err(invalid(
                "storage.compact_deleted_fraction",
                format!(
                    "must be a number above 0 (above 1: never compact), got {}",
                    st.compact_deleted_fraction
                ),
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.cert.as_os_str().is_empty() || tls.key.as_os_str().is_empty() {
                return Err(invalid(
                    "tls",
                    "both a certificate and a key are needed (PARADOX_TLS_CERT and PARADOX_TLS_KEY)",
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for key in &self.auth.keys {
            if key.key.len() < 8 {
                return Err(invalid(
                    "auth.keys",
                    format!("key `{}` is shorter than 8 characters", key.name),
                ));
            }
            if !seen.insert(key.key.as_str()) {
                return Err(invalid(
                    "auth.keys",
                    format!("key `{}` duplicates another key's secret", key.name),
                ));
            }
        }
        if self.legacy.enabled && self.legacy.dimension == 0 {
            return Err(invalid("legacy.dimension", "must be at least 1"));
        }
        Ok(())
    }

    /// The directory snapshot files are kept in.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.snapshots_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("snapshots"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_nothing() {
        let config = ServerConfig::load(None, Vec::new()).unwrap();
        assert_eq!(config.rest_addr.port(), 8333);
        assert!(config.auth.keys.is_empty());
    }

    #[test]
    fn file_then_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paradox.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\n[limits]\nmax_k = 50\n[[auth.keys]]\nname = \"a\"\nkey = \"abcdefgh\"\nrole = \"read-only\"\ncollections = [\"docs\"]\n",
        )
        .unwrap();
        let env = vec![
            ("PARADOX_MAX_K".to_string(), "70".to_string()),
            ("PARADOX_GRPC_ADDR".to_string(), "off".to_string()),
        ];
        let config = ServerConfig::load(Some(&path), env).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.limits.max_k, 70);
        assert_eq!(config.grpc_addr, None);
        assert_eq!(config.auth.keys[0].role, Role::ReadOnly);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "dataa_dir = \"x\"\n").unwrap();
        let err = ServerConfig::load(Some(&path), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("dataa_dir"), "{err}");
        let env = vec![("PARADOX_MAX_BATCH".to_string(), "lots".to_string())];
        let err = ServerConfig::load(None, env).unwrap_err();
        assert!(err.to_string().contains("PARADOX_MAX_BATCH"), "{err}");
    }

    #[test]
    fn lifecycle_model_dir_and_text_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paradox.toml");
        std::fs::write(
            &path,
            "[lifecycle]\nmodel_dir = \"/models/minilm\"\n[limits]\nmax_text_bytes = 100\n",
        )
        .unwrap();
        let config = ServerConfig::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(
            config.lifecycle.model_dir,
            Some(PathBuf::from("/models/minilm"))
        );
        assert_eq!(config.limits.max_text_bytes, 100);
        let env = vec![("PARADOX_MINILM_DIR".to_string(), "/elsewhere".to_string())];
        let config = ServerConfig::load(Some(&path), env).unwrap();
        assert_eq!(
            config.lifecycle.model_dir,
            Some(PathBuf::from("/elsewhere"))
        );
        assert_eq!(ServerConfig::default().limits.max_text_bytes, 65536);
        let env = vec![("PARADOX_MAX_TEXT_BYTES".to_string(), "0".to_string())];
        let err = ServerConfig::load(None, env).unwrap_err();
        assert!(err.to_string().contains("limits.max_text_bytes"), "{err}");
        std::fs::write(&path, "[lifecycle]\nmodel_dirr = \"x\"\n").unwrap();
        let err = ServerConfig::load(Some(&path), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("model_dirr"), "{err}");
    }

    #[test]
    fn storage_reaches_the_engine_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paradox.toml");
        std::fs::write(
            &path,
            "fsync = \"always\"\n[storage]\nseal_bytes = 16777216\nmerge_factor = 8\n",
        )
        .unwrap();
        let env = vec![(
            "PARADOX_COMPACT_DELETED_FRACTION".to_string(),
            "0.5".to_string(),
        )];
        let options = ServerConfig::load(Some(&path), env)
            .unwrap()
            .engine_options();
        assert_eq!(options.fsync, FsyncPolicy::Always);
        assert_eq!(options.seal_bytes, 16 << 20);
        // Without any: the server's own defaults, not the engine's.
        let defaults = ServerConfig::load(None, Vec::new())
            .unwrap()
            .engine_options();
        assert_eq!(defaults.seal_bytes, SERVER_SEAL_BYTES);
        assert_eq!(
            defaults.compact_deleted_fraction,
            SERVER_COMPACT_DELETED_FRACTION
        );
        assert_ne!(defaults.seal_bytes, EngineOptions::default().seal_bytes);
        assert_eq!(options.merge_factor, 8);
        assert_eq!(options.compact_deleted_fraction, 0.5);
        assert_eq!(
            options.max_merge_bytes,
            EngineOptions::default().max_merge_bytes
        );
        for (name, value, needle) in [
            ("PARADOX_SEAL_BYTES", "1000", "storage.seal_bytes"),
            (
                "PARADOX_COMPACT_DELETED_FRACTION",
                "0",
                "storage.compact_deleted_fraction",
            ),
            (
                "PARADOX_COMPACT_DELETED_FRACTION",
                "NaN",
                "storage.compact_deleted_fraction",
            ),
            ("PARADOX_MERGE_FACTOR", "-1", "PARADOX_MERGE_FACTOR"),
        ] {
            let env = vec![(name.to_string(), value.to_string())];
            let err = ServerConfig::load(None, env).unwrap_err();
            assert!(err.to_string().contains(needle), "{name}={value}: {err}");
        }
    }
}
