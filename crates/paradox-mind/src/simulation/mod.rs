//! Simulation: dynamics stepped over many vectors at once.
//!
//! A [`Simulation`] owns a [`VectorBuffer`] (read from a collection, optionally
//! filtered, or made by the caller) and a list of [`Dynamics`]. One step applies every
//! dynamic to every row, in order, row by row: a row is loaded once, transformed while
//! it sits in L1, stored once, so a step costs one pass over memory (plus one read
//! pass when a dynamic needs global statistics, like flocking's centroid). Rows are
//! processed in parallel chunks on the rayon pool. Runs report progress after each
//! step and stop at the next step boundary once an `AtomicBool` is set. Results stay in
//! the buffer until [`VectorBuffer::write_back`] upserts them.
//!
//! Noise is deterministic: row `r` at step `s` draws from a generator seeded by
//! `(seed, s, r)`, so results do not depend on the thread count.

mod buffer;
mod dynamics;
mod expr;

pub use buffer::VectorBuffer;
pub use dynamics::{Dynamics, RowContext, RowFn};
pub use expr::Expression;

use crate::error::{MindError, Result};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows per parallel task (~128 KiB at d = 128: large enough to amortise scheduling).
const CHUNK_ROWS: usize = 256;

/// Progress of a run, passed to the callback after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Steps completed in this run.
    pub step: u64,
    /// Steps asked for.
    pub total: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Steps completed.
    pub steps: u64,
    /// True when the stop flag ended the run early.
    pub stopped: bool,
}

/// Vectors plus the dynamics that move them.
#[derive(Debug)]
pub struct Simulation {
    /// The vectors.
    pub buffer: VectorBuffer,
    dynamics: Vec<Dynamics>,
    /// Time step.
    pub dt: f32,
    /// Per-row velocities (flocking's alignment uses them); zero at the start.
    velocities: Vec<f32>,
    step: u64,
}

impl Simulation {
    /// A simulation of `buffer` under `dynamics` (applied in order) with time step `dt`.
    /// Errors name a dynamic whose vectors do not have the buffer's dimension, or a time
    /// step that is not finite and positive.
    pub fn new(buffer: VectorBuffer, dynamics: Vec<Dynamics>, dt: f32) -> Result<Self> {
        let dim = buffer.dimension();
        if !(dt.is_finite() && dt > 0.0) {
            return Err(MindError::invalid(
                "dt",
                format!("must be finite and positive, got {dt}"),
            ));
        }
        for dynamic in &dynamics {
            let lengths: Vec<usize> = match dynamic {
                Dynamics::GravityWell { center, .. } => vec![center.len()],
                Dynamics::Attraction { centroids, .. } => centroids.iter().map(Vec::len).collect(),
                Dynamics::Repulsion { sources, .. } => sources.iter().map(Vec::len).collect(),
                Dynamics::Expression(e) => vec![e.dimension()],
                _ => Vec::new(),
            };
            if let Some(&got) = lengths.iter().find(|&&n| n != dim) {
                return Err(MindError::Dimension {
                    context: "simulation dynamic",
                    expected: dim,
                    got,
                });
            }
        }
        let needs_velocity = dynamics
            .iter()
            .any(|d| matches!(d, Dynamics::Flocking { .. }));
        let velocities = if needs_velocity {
            vec![0.0; buffer.data().len()]
        } else {
            Vec::new()
        };
        Ok(Simulation {
            buffer,
            dynamics,
            dt,
            velocities,
            step: 0,
        })
    }

    /// Steps taken since creation.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// One step over every row.
    pub fn step(&mut self) {
        let dim = self.buffer.dimension();
        let globals =
            dynamics::Globals::compute(&self.dynamics, self.buffer.data(), &self.velocities, dim);
        let ctx = dynamics::StepContext {
            dt: self.dt,
            step: self.step,
            dim,
            globals: &globals,
        };
        let dynamics = &self.dynamics;
        let chunk = CHUNK_ROWS * dim;
        if self.velocities.is_empty() {
            self.buffer
                .data_mut()
                .par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(c, rows)| {
                    dynamics::apply_chunk(dynamics, &ctx, c * CHUNK_ROWS, rows, None)
                });
        } else {
            self.buffer
                .data_mut()
                .par_chunks_mut(chunk)
                .zip(self.velocities.par_chunks_mut(chunk))
                .enumerate()
                .for_each(|(c, (rows, vel))| {
                    dynamics::apply_chunk(dynamics, &ctx, c * CHUNK_ROWS, rows, Some(vel))
                });
        }
        self.step += 1;
    }

    /// Up to `steps` steps; `progress` is called after each, and the run stops early
    /// (between steps, never leaving a step half done) once `stop` is set.
    pub fn run(
        &mut self,
        steps: u64,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(Progress),
    ) -> RunReport {
        for done in 0..steps {
            if stop.load(Ordering::Relaxed) {
                return RunReport {
                    steps: done,
                    stopped: true,
                };
            }
            self.step();
            progress(Progress {
                step: done + 1,
                total: steps,
            });
        }
        RunReport {
            steps,
            stopped: false,
        }
    }
}

#[cfg(test)]
mod tests;
