//! Intelligence in latent space, on top of the Paradox engine's public API.
//!
//! - [`reasoning`]: concept arithmetic (`a − b + c`), analogies, blends (lerp, slerp,
//!   weighted centroids), per-dimension weighted ("attention") search, and conceptual
//!   search from raw input through an [`reasoning::Encoder`].
//! - [`temporal`]: trajectories of an entity's vector over time: velocity, speed,
//!   curvature, prediction (linear, average, Kalman, autoregressive), as-of-time search.
//! - [`simulation`]: dynamics stepped over many vectors in parallel (gravity wells,
//!   attraction, repulsion, decay, noise, flocking, or a closure), stoppable, with
//!   progress, written to a scratch buffer or back to a collection.
//! - [`evolution`]: ask/tell optimisers over latent vectors: CMA-ES (full, separable,
//!   IPOP/BIPOP), GA with operator bandits, novelty search, MAP-Elites, surrogate
//!   assistance, generator plugins, human feedback and a safety guard.
//! - [`api`]: reasoning and trajectories as one JSON request/response pair
//!   ([`api::ReasonRequest`] → [`api::ReasonResponse`]), the form the server and the
//!   Python package expose.
//!
//! This crate never reaches into the engine's internals: everything it reads or writes
//! goes through `Collection::{get, search, scroll, upsert}`.

pub mod api;
mod error;
pub mod evolution;
pub mod reasoning;
pub mod simulation;
pub mod temporal;

pub use error::{MindError, Result};
