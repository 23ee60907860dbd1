//! Starting and stopping a server: open the engine, bind REST and gRPC, serve until
//! [`RunningServer::shutdown`], then drain and flush.
//!
//! Shutdown sequence: (1) the gate refuses new calls with 503 and `/readyz` turns 503,
//! (2) both listeners stop accepting and in-flight calls finish, (3) living collections'
//! background migrations pause after their current batch (resumable), (4) every
//! collection's log is fsynced, so every acknowledged write is on disk whatever the fsync
//! policy.

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::gate::Gate;
use crate::grpc::GrpcService;
use crate::rest::{self, legacy::LegacyState, AppState};
use crate::service::{EngineService, MemoryService};
use paradox_engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory could not be opened.
    #[error("cannot open data directory {path}: {source}")]
    Engine {
        /// The directory.
        path: String,
        /// The engine's reason.
        source: paradox_engine::EngineError,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS files are missing or invalid.
    #[error("{0}")]
    Tls(String),
    /// The audit log cannot be opened.
    #[error("cannot open audit log: {0}")]
    Audit(std::io::Error),
    /// The legacy collection cannot be prepared.
    #[error("legacy routes: {0}")]
    Legacy(crate::error::ApiError),
    /// A listener failed while serving.
    #[error("{transport} server failed: {message}")]
    Serve {
        /// `rest` or `grpc`.
        transport: &'static str,
        /// What happened.
        message: String,
    },
    /// The final flush failed: some acknowledged writes may not be on disk.
    #[error("final flush failed: {0}")]
    Flush(crate::error::ApiError),
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// Where REST listens (the real port when 0 was asked).
    pub rest_addr: SocketAddr,
    /// Where gRPC listens, if enabled.
    pub grpc_addr: Option<SocketAddr>,
    /// The shared gate (metrics, limits), for embedding callers and tests.
    pub gate: Arc<Gate>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// Begins a graceful shutdown; [`RunningServer::wait`] returns when it is complete.
    pub fn shutdown(&self) {
        self.gate.begin_shutdown();
        let _ = self.stop.send(true);
    }

    /// Waits until the server has stopped (after [`RunningServer::shutdown`]) and flushed.
    pub async fn wait(self) -> Result<(), ServerError> {
        self.task.await.unwrap_or_else(|e| {
            Err(ServerError::Serve {
                transport: "server",
                message: e.to_string(),
            })
        })
    }
}

/// Opens `config.data_dir` and starts serving it.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let options = config.engine_options();
    let dir = config.data_dir.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open_with(&dir, options))
        .await
        .map_err(|e| ServerError::Serve {
            transport: "engine",
            message: e.to_string(),
        })?
        .map_err(|source| ServerError::Engine {
            path: config.data_dir.display().to_string(),
            source,
        })?;
    let service = Arc::new(EngineService::configured(Arc::new(engine), &config));
    start_with_service(config, service).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

/// How long past the request timeout a shutdown waits for connections to close.
const DRAIN_SLACK: Duration = Duration::from_secs(2);

/// Waits for a listener task to finish its graceful shutdown, but at most `bound` after
/// the shutdown began; then stops waiting (aborts the accept loop) so the engine is
/// flushed. Calls under the request timeout have ended by then, so nothing acknowledged
/// is lost (a snapshot upload still streaming, bounded only by idleness, was not
/// acknowledged either); such a connection's own task ends when its client goes or the
/// runtime stops (process exit, or `paradox.serve`'s `stop`).
async fn drain(
    mut task: JoinHandle<Result<(), ServerError>>,
    stop: watch::Receiver<bool>,
    bound: Duration,
    transport: &'static str,
) -> Result<Result<(), ServerError>, tokio::task::JoinError> {
    let deadline = async {
        stopped(stop).await;
        tokio::time::sleep(bound).await;
    };
    tokio::select! {
        finished = &mut task => finished,
        () = deadline => {
            tracing::warn!(
                transport,
                bound_ms = bound.as_millis() as u64,
                "connections still open after the shutdown's drain bound; no longer waiting for them"
            );
            task.abort();
            match task.await {
                Err(e) if e.is_cancelled() => Ok(Ok(())),
                other => other,
            }
        }
    }
}

/// Serves any [`MemoryService`] with `config`'s listeners, auth and limits.
pub async fn start_with_service(
    config: ServerConfig,
    service: Arc<dyn MemoryService>,
) -> Result<RunningServer, ServerError> {
    let audit = AuditLog::open(config.audit_log.as_deref()).map_err(ServerError::Audit)?;
    let gate = Arc::new(Gate::new(
        Authenticator::new(&config.auth),
        config.limits.clone(),
        audit,
    ));
    let legacy = if config.legacy.enabled {
        let l = &config.legacy;
        let state = LegacyState::open(&*service, l.id.clone(), l.collection.clone(), l.dimension)
            .await
            .map_err(ServerError::Legacy)?;
        Some(Arc::new(state))
    } else {
        None
    };
    let tls = match &config.tls {
        Some(tls) => Some((
            crate::tls::server_config(tls).map_err(ServerError::Tls)?,
            tls,
        )),
        None => None,
    };
    let app = rest::router(AppState {
        service: service.clone(),
        gate: gate.clone(),
        legacy,
    });
    let (stop, stop_rx) = watch::channel(false);

    let rest_listener = bind(config.rest_addr).await?;
    let rest_addr = rest_listener
        .local_addr()
        .map_err(|source| ServerError::Bind {
            addr: config.rest_addr,
            source,
        })?;
    let rest_task: JoinHandle<Result<(), ServerError>> = {
        let signal = stopped(stop_rx.clone());
        let serve_error = |e: std::io::Error| ServerError::Serve {
            transport: "rest",
            message: e.to_string(),
        };
        match &tls {
            Some((server_config, _)) => {
                let listener = crate::tls::TlsListener::new(rest_listener, server_config.clone())
                    .map_err(serve_error)?;
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(signal)
                        .await
                        .map_err(serve_error)
                })
            }
            None => tokio::spawn(async move {
                // Small responses must not wait for the peer's delayed ACK (Nagle).
                let listener = axum::serve::ListenerExt::tap_io(rest_listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(signal)
                    .await
                    .map_err(serve_error)
            }),
        }
    };

    let (grpc_addr, grpc_task) = match config.grpc_addr {
        Some(addr) => {
            let listener = bind(addr).await?;
            let local = listener
                .local_addr()
                .map_err(|source| ServerError::Bind { addr, source })?;
            let mut builder = tonic::transport::Server::builder();
            if let Some((_, files)) = &tls {
                let read = |p: &std::path::Path| {
                    std::fs::read(p).map_err(|e| ServerError::Tls(format!("{}: {e}", p.display())))
                };
                let identity =
                    tonic::transport::Identity::from_pem(read(&files.cert)?, read(&files.key)?);
                builder = builder
                    .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                    .map_err(|e| ServerError::Tls(format!("gRPC TLS: {e}")))?;
            }
            let grpc = GrpcService::new(service.clone(), gate.clone());
            let router = builder
                .add_service(grpc.clone().into_server())
                .add_service(grpc.into_living_server());
            // tonic's own `tcp_nodelay` does not apply to a listener we pass in: set it on
            // each accepted socket. Without it a response's HEADERS and DATA frames go out
            // as two segments and the second waits for the client's delayed ACK (~40 ms).
            let incoming = tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                |accepted| {
                    if let Ok(tcp) = &accepted {
                        let _ = tcp.set_nodelay(true);
                    }
                    accepted
                },
            );
            let signal = stopped(stop_rx.clone());
            let task: JoinHandle<Result<(), ServerError>> = tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, signal)
                    .await
                    .map_err(|e| ServerError::Serve {
                        transport: "grpc",
                        message: e.to_string(),
                    })
            });
            (Some(local), Some(task))
        }
        None => (None, None),
    };
    tracing::info!(%rest_addr, ?grpc_addr, tls = tls.is_some(), auth = gate.auth.enabled(), "paradox server listening");

    let flush_service = service.clone();
    // In-flight calls end within the request timeout; a connection still open past it
    // (a client that stalls mid-request) must not hold the shutdown open.
    let drain_bound = Duration::from_millis(config.limits.request_timeout_ms) + DRAIN_SLACK;
    let task = tokio::spawn(async move {
        // Both listeners drain at once, so the bound holds for the whole shutdown.
        let grpc_drain = async {
            match grpc_task {
                Some(task) => Some(drain(task, stop_rx.clone(), drain_bound, "grpc").await),
                None => None,
            }
        };
        let (rest, grpc) = tokio::join!(
            drain(rest_task, stop_rx.clone(), drain_bound, "rest"),
            grpc_drain
        );
        // Background migrations stop after their batch (they resume when started again),
        // so nothing writes after the flush.
        if let Ok(living) = flush_service.living() {
            living.pause_all().await;
        }
        // Flush even when a listener failed: acknowledged writes must reach the disk.
        let flushed = flush_service.flush().await.map_err(ServerError::Flush);
        let joined = |r: Result<Result<(), ServerError>, tokio::task::JoinError>, transport| {
            r.unwrap_or_else(|e| {
                Err(ServerError::Serve {
                    transport,
                    message: e.to_string(),
                })
            })
        };
        joined(rest, "rest")?;
        if let Some(grpc) = grpc {
            joined(grpc, "grpc")?;
        }
        flushed?;
        tracing::info!("paradox server stopped; every acknowledged write is on disk");
        Ok(())
    });
    Ok(RunningServer {
        rest_addr,
        grpc_addr,
        gate,
        stop,
        task,
    })
}

/// Installs the `tracing` subscriber on stderr: `format` is `text` or `json`; the level
/// comes from `RUST_LOG` (default `info`).
pub fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
