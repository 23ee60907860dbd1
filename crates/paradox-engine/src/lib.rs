//! The Paradox engine: an embedded, durable store of latent vectors with metadata.
//!
//! An [`Engine`] owns a data directory of named [`Collection`]s. A collection holds
//! points ([`NewPoint`] in, [`Point`] out): an id ([`PointId`]), a vector of fixed
//! dimension, a JSON payload, an encoder version, provenance and timestamps.
//!
//! Writes go to a write-ahead log first and are searchable as soon as they are applied;
//! the call returns once the log covers them per the fsync policy ([`FsyncPolicy`]).
//! Recent points live in a growing segment in RAM; at a size threshold it is sealed into
//! an immutable, checksummed, memory-mapped segment file and the log is truncated.
//!
//! Searches ([`Collection::search`], [`Collection::search_batch`]) scan the growing
//! segment exactly and search each sealed segment through its HNSW graph once a
//! background build has installed it (exactly until then), with payload [`Filter`]s,
//! merging everything into one top-k. [`IndexConfig`] chooses per collection.
//!
//! This crate does not know about the network or Python: servers and bindings sit on
//! top of its public API. It never panics on bad input; every error is an
//! [`EngineError`] naming the problem.

mod codec;
mod collection;
mod config;
mod engine;
mod error;
mod filter;
mod helped;
mod lock;
mod manifest;
mod point;
mod segment;
mod snapshot;

pub use collection::{
    Collection, CollectionInfo, CompactionReport, ScrollPage, ScrollRequest, SearchParams,
    SearchRequest, WriteResult, EXACT_SELECTIVITY, MAX_EF_WIDENING,
};
pub use config::{
    validate_name, CollectionConfig, EngineOptions, HnswConfig, IndexConfig, IvfConfig,
    TraversalEncoding, AUTO_HNSW_MIN_ROWS, MAX_BATCH, MAX_DIMENSION, MAX_K,
};
pub use engine::Engine;
pub use error::{EngineError, Result};
pub use filter::{payload, Filter, Range};
pub use paradox_kernels::Metric;
pub use paradox_storage::FsyncPolicy;
pub use point::{NewPoint, Payload, Point, PointId, PointVersion, Provenance, ScoredPoint};
pub use snapshot::{verify_snapshot, SnapshotInfo, SnapshotSummary};
