//! Paradox over the network: `paradox serve`.
//!
//! Two transports, REST/JSON ([`rest`], axum) and gRPC ([`grpc`], tonic, from
//! `proto/paradox/v1/paradox.proto`), are thin layers over one trait, [`MemoryService`].
//! [`EngineService`] implements it for a single node; the cluster router will implement
//! it too. Living collections (`paradox-lifecycle`: vector spaces, raw text encoded on the
//! server, adapters, migrations, drift) are a second trait, [`LivingService`], reached
//! through [`MemoryService::living`]. Both transports pass every call through one [`gate::Gate`]: API-key
//! authentication and role/collection authorisation ([`auth`]), limits (batch, `k`,
//! dimension, body size, per-request timeout, a bounded write queue answering 429),
//! the JSON-lines [`audit`] log of mutating calls, and Prometheus [`metrics`].
//! [`server::start`] binds both listeners (optionally with TLS, [`tls`]) and returns a
//! handle whose shutdown stops accepting, drains in-flight calls and flushes the engine.
//!
//! This crate does not store anything itself: all data goes through the service trait.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod gate;
pub mod grpc;
pub mod metrics;
pub mod rest;
pub mod server;
pub mod service;
pub mod tls;
pub mod upload;

/// Generated protobuf messages and the tonic server trait (`paradox.v1`).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod proto {
    tonic::include_proto!("paradox.v1");
}

pub use config::ServerConfig;
pub use error::{ApiError, ApiResult};
pub use server::{start, start_with_service, RunningServer, ServerError};
pub use service::{EngineService, LivingService, MemoryService};
