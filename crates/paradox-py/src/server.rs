//! `paradox.serve`: the Paradox server (`paradox serve`, crate `paradox-server`) inside a
//! Python process, so `pip install paradoxlf` alone gives a working node.
//!
//! The server runs on its own tokio runtime (worker threads that never touch Python);
//! Python only starts it, waits for it and stops it, and holds the GIL for none of that.
//! Waiting wakes every 100 ms to let Python deliver signals: Ctrl-C in a `wait()` raises
//! `KeyboardInterrupt` in the waiting thread, and the caller stops the server (the
//! `paradox-node` command does exactly that, for SIGTERM too).
//!
//! Stopping is the server's graceful shutdown: new calls get 503, in-flight calls finish,
//! every collection's log is fsynced. A `Server` that is garbage-collected while running
//! is stopped the same way, so keep the handle as long as the node should serve.

use crate::engine::PyEngine;
use crate::errors::{invalid, ParadoxError};
use paradox_engine::Engine;
use paradox_server::config::{ApiKeyConfig, TlsConfig};
use paradox_server::{EngineService, RunningServer, ServerConfig, ServerError};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one wait lasts before Python gets a chance to deliver signals.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Where a server is in its life.
///
/// ```text
///  serve() ──► Running ──stop() / drop──► Stopping ──flushed──► Stopped(result)
/// ```
#[derive(Debug)]
enum Phase {
    /// Serving; sending on `stop` begins the shutdown.
    Running {
        stop: tokio::sync::oneshot::Sender<()>,
    },
    /// Shutdown begun; the outcome arrives on `done`.
    Stopping,
    /// Shut down; `Err` holds the reason the shutdown (or a listener) failed.
    Stopped(Result<(), String>),
}

/// A running Paradox server (REST, optionally gRPC and the paradoxlf 0.17 routes),
/// returned by :func:`paradox.serve`.
///
/// Example::
///
///     import paradox
///     with paradox.serve("./node-data", rest_addr="127.0.0.1:0", grpc_addr="off") as server:
///         client = paradox.connect(server.url)
///         client.create_collection("docs", 3)
#[pyclass(name = "Server", module = "paradox._native", frozen)]
#[derive(Debug)]
pub struct PyServer {
    // Released when the server stops, so the data directory's lock goes with it.
    engine: Mutex<Option<Arc<Engine>>>,
    rest_addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    tls: bool,
    phase: Mutex<Phase>,
    // Receives the shutdown's outcome once; guarded separately so `wait` can block on it
    // without holding `phase`.
    done: Mutex<Option<mpsc::Receiver<Result<(), String>>>>,
    // Dropped last: dropping the runtime stops its worker threads.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl PyServer {
    /// Begins the shutdown unless it has begun.
    fn begin_stop(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *phase, Phase::Stopping) {
            // The receiving task only ends after a stop, so the send cannot fail unless
            // the runtime is gone; either way the shutdown is under way.
            Phase::Running { stop } => {
                let _ = stop.send(());
            }
            other => *phase = other,
        }
    }

    /// Waits up to `timeout` for the shutdown outcome; `None` if it has not arrived.
    fn poll_done(&self, timeout: Duration) -> Option<Result<(), String>> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = done.as_ref()?;
        let outcome = match receiver.recv_timeout(timeout) {
            Ok(outcome) => outcome,
            Err(mpsc::RecvTimeoutError::Timeout) => return None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the server task ended without reporting".to_string())
            }
        };
        *done = None;
        drop(done);
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase::Stopped(outcome.clone());
        // Every task has finished: the runtime's threads and the engine can go.
        if let Some(runtime) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
        self.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
        Some(outcome)
    }

    fn stopped_outcome(&self) -> Option<Result<(), String>> {
        match &*self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::Stopped(outcome) => Some(outcome.clone()),
            _ => None,
        }
    }

    /// Blocks (GIL released) until stopped or `deadline`; between slices lets Python
    /// deliver signals, so Ctrl-C interrupts a wait. Returns whether it has stopped.
    fn wait_until(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<bool> {
        loop {
            if let Some(outcome) = self.stopped_outcome() {
                return outcome.map(|()| true).map_err(ParadoxError::new_err);
            }
            let slice = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    left.min(SIGNAL_POLL)
                }
                None => SIGNAL_POLL,
            };
            if let Some(outcome) = py.allow_threads(|| self.poll_done(slice)) {
                return outcome.map(|()| true).map_err(ParadoxError::new_err);
            }
            py.check_signals()?;
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // A forgotten server still drains and flushes: acknowledged writes reach the disk.
        self.begin_stop();
        if self.stopped_outcome().is_none() {
            let _ = self.poll_done(Duration::from_secs(60));
        }
        if let Some(runtime) = self
            .runtime
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

#[pymethods]
impl PyServer {
    /// The REST base URL, e.g. ``"http://127.0.0.1:8333"`` (a wildcard listen address
    /// is reported as ``127.0.0.1``, the address a local client can reach).
    #[getter]
    fn url(&self) -> String {
        let mut addr = self.rest_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("{}://{addr}", self.scheme())
    }

    /// Where REST listens, ``"host:port"`` (the real port when 0 was asked).
    #[getter]
    fn rest_addr(&self) -> String {
        self.rest_addr.to_string()
    }

    /// The REST port.
    #[getter]
    fn port(&self) -> u16 {
        self.rest_addr.port()
    }

    /// Where gRPC listens, or None when it is off.
    #[getter]
    fn grpc_addr(&self) -> Option<String> {
        self.grpc_addr.map(|a| a.to_string())
    }

    /// The served data directory as a :class:`paradox.Engine` (the same open engine the
    /// server uses, so reads and writes through it are what clients see). Only while
    /// running: a stopped server has closed its engine (unless such a handle keeps it).
    #[getter]
    fn engine(&self) -> PyResult<PyEngine> {
        match &*self.engine.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(engine) if self.running() => Ok(PyEngine::from_engine(engine.clone())),
            _ => Err(PyRuntimeError::new_err("the server has stopped")),
        }
    }

    /// True until :meth:`stop` (or a failure) has shut the server down.
    #[getter]
    fn running(&self) -> bool {
        matches!(
            *self.phase.lock().unwrap_or_else(|e| e.into_inner()),
            Phase::Running { .. }
        )
    }

    /// Stops gracefully: refuses new calls, finishes in-flight ones, fsyncs every
    /// collection's log. Blocks until done; calling it again does nothing. Raises
    /// ``ParadoxError`` if the final flush (or a listener) failed.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.begin_stop();
        self.wait_until(py, None).map(|_| ())
    }

    /// Blocks until the server has stopped (after :meth:`stop` from another thread) or
    /// ``timeout`` seconds have passed; returns whether it has stopped. Signals are
    /// delivered while waiting: Ctrl-C raises ``KeyboardInterrupt`` here, and the server
    /// keeps running until it is stopped. Wait in a daemon thread only if the program
    /// stops the server before it exits: CPython ends daemon threads at exit by unwinding
    /// them, which aborts the process when they are inside native code.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = match timeout {
            None => None,
            Some(t) if t.is_finite() && t >= 0.0 => {
                Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))
            }
            Some(t) => {
                return Err(invalid(
                    "timeout",
                    format!("expected seconds >= 0, got {t}"),
                ))
            }
        };
        self.wait_until(py, deadline)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let state = if self.running() { "running" } else { "stopped" };
        format!("Server(url={:?}, {state})", self.url())
    }
}

fn server_error(error: ServerError) -> PyErr {
    match error {
        ServerError::Bind { .. } => PyOSError::new_err(error.to_string()),
        ServerError::Tls(_) => PyValueError::new_err(error.to_string()),
        ServerError::Legacy(ref e) if e.http_status().is_client_error() => {
            PyValueError::new_err(error.to_string())
        }
        _ => ParadoxError::new_err(error.to_string()),
    }
}

fn parse_addr(argument: &str, value: &str) -> PyResult<SocketAddr> {
    value
        .parse()
        .map_err(|_| invalid(argument, format!("expected HOST:PORT, got {value:?}")))
}

/// Starts a Paradox server in the background and returns its :class:`Server` handle.
///
/// Configuration, lowest to highest precedence: the defaults of ``paradox serve``, the
/// TOML file ``config`` (docs/server.md), these arguments (None keeps the value below).
/// ``PARADOX_*`` environment variables are not read.
///
/// ``data_dir``: the directory served (default ``./paradox-data``). ``rest_addr`` /
/// ``grpc_addr``: ``"HOST:PORT"`` (port 0 picks a free one); ``grpc_addr="off"``
/// disables gRPC. ``api_key``: one admin key (auth turns on). ``fsync``: ``"always"``,
/// ``"interval"`` or ``"never"``. ``tls_cert`` + ``tls_key``: PEM files.
/// ``audit_log``: JSON-lines file of mutating calls. ``legacy=True`` also serves
/// paradoxlf 0.17's ``GET /``, ``POST /add``, ``POST /query`` with node id
/// ``legacy_id`` over an l2 collection of dimension ``legacy_dimension``. ``log=True``
/// logs to stderr (level from ``RUST_LOG``; once per process).
#[pyfunction]
#[pyo3(signature = (
    data_dir = None, *, rest_addr = None, grpc_addr = None, api_key = None, fsync = None,
    config = None, tls_cert = None, tls_key = None, audit_log = None, legacy = false,
    legacy_id = None, legacy_dimension = None, legacy_collection = None, log = false
))]
#[allow(clippy::too_many_arguments)]
pub fn serve(
    py: Python<'_>,
    data_dir: Option<PathBuf>,
    rest_addr: Option<&str>,
    grpc_addr: Option<&str>,
    api_key: Option<String>,
    fsync: Option<String>,
    config: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    legacy: bool,
    legacy_id: Option<String>,
    legacy_dimension: Option<usize>,
    legacy_collection: Option<String>,
    log: bool,
) -> PyResult<PyServer> {
    let mut settings = match &config {
        Some(path) => {
            ServerConfig::from_file(path).map_err(|e| PyValueError::new_err(e.to_string()))?
        }
        None => ServerConfig::default(),
    };
    if let Some(dir) = data_dir {
        settings.data_dir = dir;
    }
    if let Some(addr) = rest_addr {
        settings.rest_addr = parse_addr("rest_addr", addr)?;
    }
    match grpc_addr {
        Some("off") => settings.grpc_addr = None,
        Some(addr) => settings.grpc_addr = Some(parse_addr("grpc_addr", addr)?),
        None => {}
    }
    if let Some(key) = api_key {
        settings.auth.keys.push(ApiKeyConfig {
            name: "python-admin".into(),
            key,
            role: paradox_server::auth::Role::Admin,
            collections: None,
        });
    }
    if let Some(fsync) = fsync {
        settings.fsync = fsync;
    }
    match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => settings.tls = Some(TlsConfig { cert, key }),
        (None, None) => {}
        _ => return Err(invalid("tls_cert", "tls_cert and tls_key go together")),
    }
    if let Some(path) = audit_log {
        settings.audit_log = Some(path);
    }
    if legacy {
        settings.legacy.enabled = true;
    }
    if let Some(id) = legacy_id {
        settings.legacy.id = id;
    }
    if let Some(dimension) = legacy_dimension {
        settings.legacy.dimension = dimension;
    }
    if let Some(collection) = legacy_collection {
        settings.legacy.collection = collection;
    }
    settings
        .validate()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    if log {
        paradox_server::server::init_logging(&settings.log_format);
    }
    py.allow_threads(move || start(settings))
}

/// Opens the engine, starts the runtime and the server, and hands the shutdown to a task.
fn start(settings: ServerConfig) -> PyResult<PyServer> {
    let options = settings.engine_options();
    let engine = Engine::open_with(&settings.data_dir, options).map_err(|e| {
        let user_error = e.is_user_error();
        let message = format!(
            "cannot open data directory {}: {e}",
            settings.data_dir.display()
        );
        if user_error {
            PyValueError::new_err(message)
        } else {
            ParadoxError::new_err(message)
        }
    })?;
    let engine = Arc::new(engine);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("paradox-server")
        .enable_all()
        .build()
        .map_err(|e| ParadoxError::new_err(format!("cannot start the async runtime: {e}")))?;
    let tls = settings.tls.is_some();
    let service = Arc::new(EngineService::configured(engine.clone(), &settings));
    let running: RunningServer = runtime
        .block_on(paradox_server::start_with_service(settings, service))
        .map_err(server_error)?;
    let rest_addr = running.rest_addr;
    let grpc_addr = running.grpc_addr;
    let (stop, stop_requested) = tokio::sync::oneshot::channel::<()>();
    let (report, done) = mpsc::channel();
    runtime.spawn(async move {
        // Also fires if the handle's sender is dropped: the server never outlives it.
        let _ = stop_requested.await;
        running.shutdown();
        let outcome = running.wait().await.map_err(|e| e.to_string());
        let _ = report.send(outcome);
    });
    Ok(PyServer {
        engine: Mutex::new(Some(engine)),
        rest_addr,
        grpc_addr,
        tls,
        phase: Mutex::new(Phase::Running { stop }),
        done: Mutex::new(Some(done)),
        runtime: Mutex::new(Some(runtime)),
    })
}
