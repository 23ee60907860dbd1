//! `paradox serve`: the networked server (REST + gRPC) over the data directory.
//!
//! Configuration, lowest to highest precedence: defaults, the TOML file (`--config` or
//! `PARADOX_CONFIG`), `PARADOX_*` environment variables, these flags. The legacy flags
//! (`--legacy --id --port --dimension --persistence`) mirror paradoxlf 0.17's
//! `paradox-node`, so an old deployment changes only its command name.

use anyhow::{Context, Result};
use clap::Args;
use paradox_server::config::ApiKeyConfig;
use paradox_server::ServerConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::store::{FsyncArg, GlobalArgs};

/// `serve` flags.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  paradox serve                                   REST on 127.0.0.1:8333, gRPC on 127.0.0.1:8334
  paradox serve --config paradox.toml
  paradox serve --rest-addr 0.0.0.0:8333 --api-key \"$KEY\" --tls-cert cert.pem --tls-key key.pem
  paradox serve --legacy --id node_1 --port 8000 --dimension 128 --persistence ./node1-data")]
pub struct ServeArgs {
    /// TOML config file (see docs/server.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// REST listen address.
    #[arg(long, value_name = "HOST:PORT")]
    pub rest_addr: Option<SocketAddr>,
    /// gRPC listen address, or `off`.
    #[arg(long, value_name = "HOST:PORT|off")]
    pub grpc_addr: Option<String>,
    /// An admin API key (authentication turns on; more keys and roles in the config file).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Append a JSON line per mutating call to this file.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_name = "text|json")]
    pub log_format: Option<String>,
    /// Serve paradoxlf 0.17's `GET /`, `POST /add`, `POST /query` too.
    #[arg(long)]
    pub legacy: bool,
    /// Legacy: node id reported by `GET /` (paradox-node --id).
    #[arg(long, value_name = "ID", requires = "legacy")]
    pub id: Option<String>,
    /// Legacy: REST port on 0.0.0.0 (paradox-node --port). gRPC is then off unless
    /// --grpc-addr is given: a 0.17 node served HTTP only, and two nodes on one machine
    /// would otherwise collide on the default gRPC port.
    #[arg(long, value_name = "PORT", requires = "legacy")]
    pub port: Option<u16>,
    /// Legacy: vector dimension of the legacy collection (paradox-node --dimension).
    #[arg(long, value_name = "N", requires = "legacy")]
    pub dimension: Option<usize>,
    /// Legacy: where data lives (paradox-node --persistence); a `.pkl` path becomes a
    /// directory beside it with the extension `.paradox`.
    #[arg(long, value_name = "PATH", requires = "legacy")]
    pub persistence: Option<PathBuf>,
}

fn build_config(args: ServeArgs, global: &GlobalArgs) -> Result<ServerConfig> {
    let mut config = ServerConfig::load(args.config.as_deref(), std::env::vars())?;
    // The global --data-dir has a default; only an explicit value overrides the config.
    if global.data_dir.as_path() != std::path::Path::new("./paradox-data") {
        config.data_dir = global.data_dir.clone();
    }
    if let Some(fsync) = global.fsync {
        config.fsync = match fsync {
            FsyncArg::Always => "always",
            FsyncArg::Interval => "interval",
            FsyncArg::Never => "never",
        }
        .into();
    }
    if let Some(addr) = args.rest_addr {
        config.rest_addr = addr;
    }
    match args.grpc_addr.as_deref() {
        Some("off") => config.grpc_addr = None,
        Some(addr) => {
            config.grpc_addr = Some(addr.parse().with_context(|| {
                format!("invalid --grpc-addr `{addr}`: expected HOST:PORT or off")
            })?)
        }
        None => {}
    }
    if let Some(key) = args.api_key {
        config.auth.keys.push(ApiKeyConfig {
            name: "cli-admin".into(),
            key,
            role: paradox_server::auth::Role::Admin,
            collections: None,
        });
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(paradox_server::config::TlsConfig { cert, key });
    }
    if let Some(path) = args.audit_log {
        config.audit_log = Some(path);
    }
    if let Some(format) = args.log_format {
        config.log_format = format;
    }
    if args.legacy {
        config.legacy.enabled = true;
        if let Some(id) = args.id {
            config.legacy.id = id;
        }
        if let Some(port) = args.port {
            config.rest_addr = SocketAddr::from(([0, 0, 0, 0], port));
            if args.grpc_addr.is_none() {
                config.grpc_addr = None;
            }
        }
        if let Some(dimension) = args.dimension {
            config.legacy.dimension = dimension;
        }
        if let Some(path) = args.persistence {
            config.data_dir = if path.extension().is_some_and(|e| e == "pkl") {
                path.with_extension("paradox")
            } else {
                path
            };
        }
    }
    config.validate()?;
    Ok(config)
}

/// Runs `serve` until SIGINT or SIGTERM, then shuts down gracefully.
pub fn run(args: ServeArgs, global: &GlobalArgs) -> Result<()> {
    let config = build_config(args, global)?;
    return_large_blocks_to_the_os();
    paradox_server::server::init_logging(&config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = paradox_server::start(config).await?;
        eprintln!(
            "paradox serving: REST {}{}",
            server.rest_addr,
            server
                .grpc_addr
                .map(|a| format!(", gRPC {a}"))
                .unwrap_or_default()
        );
        wait_for_signal().await;
        eprintln!("shutting down: draining requests and flushing");
        server.shutdown();
        server.wait().await?;
        Ok(())
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A long-running server frees large blocks (a sealed growing segment's vectors, a
/// finished index build's scratch) all the time. glibc's malloc raises its mmap threshold
/// to the size of each large block freed (up to 32 MiB), after which blocks that size come
/// from heap arenas, whose freed memory it seldom gives back: the soak saw the resident
/// set keep some 30 MB per seal. A fixed 1 MiB threshold keeps large blocks on their own
/// mappings, returned when freed. (Set by `MALLOC_MMAP_THRESHOLD_` in the environment:
/// that value is kept.)
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator settings; it is called before the
        // runtime's threads start, with a valid parameter and value.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        global: GlobalArgs,
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn config(args: &[&str]) -> ServerConfig {
        let cli = Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .expect("flags parse");
        build_config(cli.serve, &cli.global).expect("config builds")
    }

    #[test]
    fn a_legacy_node_on_its_own_port_serves_no_grpc_unless_asked() {
        let node = config(&["--legacy", "--port", "8001", "--dimension", "4"]);
        assert_eq!(node.rest_addr, SocketAddr::from(([0, 0, 0, 0], 8001)));
        assert_eq!(node.grpc_addr, None);
        let asked = config(&[
            "--legacy",
            "--port",
            "8001",
            "--dimension",
            "4",
            "--grpc-addr",
            "127.0.0.1:9001",
        ]);
        assert_eq!(
            asked.grpc_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9001)))
        );
        // Without --port the ordinary defaults stand.
        assert!(config(&["--legacy", "--dimension", "4"])
            .grpc_addr
            .is_some());
    }
}
