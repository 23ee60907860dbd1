//! Drift reports: a reference window of a space's vectors against a recent one.
//!
//! Two sources: the stored points ordered by creation time (the oldest `n` against the
//! newest `n`: works on any collection, at any time, from the CLI), and the vectors this
//! process saw lately (writes and queries, kept in a ring per space) against the oldest
//! stored points.

use super::{for_each_page, invalid, LivingCollection};
use crate::drift::{detect_drift, DriftConfig, DriftReport};
use crate::error::Result;
use paradox_engine::PointId;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

/// Vectors kept per space for [`DriftWindow::Recent`].
pub const RECENT_CAPACITY: usize = 2_000;

/// Which vectors a drift report compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftWindow {
    /// The `n` oldest stored points against the `n` newest (by creation time).
    Stored {
        /// Points per window.
        n: usize,
    },
    /// The `n` oldest stored points against the last vectors written or searched with
    /// in this process (up to [`RECENT_CAPACITY`]).
    Recent {
        /// Points in the reference window.
        n: usize,
    },
}

/// The last vectors written or searched with, per space.
#[derive(Debug, Default)]
pub(crate) struct RecentWindows {
    spaces: Mutex<HashMap<String, VecDeque<Vec<f32>>>>,
}

impl RecentWindows {
    /// Remembers row-major vectors of `dim` values.
    pub(crate) fn record(&self, space: &str, vectors: &[f32], dim: usize) {
        if dim == 0 || !vectors.len().is_multiple_of(dim) {
            return;
        }
        let mut spaces = self.spaces.lock();
        let ring = spaces.entry(space.to_string()).or_default();
        let rows = vectors.len() / dim;
        // Only the last RECENT_CAPACITY rows can survive.
        let skip = rows.saturating_sub(RECENT_CAPACITY);
        for row in vectors.chunks_exact(dim).skip(skip) {
            if ring.len() == RECENT_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(row.to_vec());
        }
    }

    /// Drops the window of a removed space (a space added later under its name starts
    /// empty).
    pub(crate) fn forget(&self, space: &str) {
        self.spaces.lock().remove(space);
    }

    fn snapshot(&self, space: &str) -> Vec<f32> {
        self.spaces
            .lock()
            .get(space)
            .map(|ring| ring.iter().flatten().copied().collect())
            .unwrap_or_default()
    }
}

impl LivingCollection {
    /// Compares a reference window of `space` with a recent one (see [`DriftWindow`]).
    pub fn drift(
        &self,
        space: &str,
        window: DriftWindow,
        config: &DriftConfig,
    ) -> Result<DriftReport> {
        let space = self.state.read().space(space)?.clone();
        let n = match window {
            DriftWindow::Stored { n } | DriftWindow::Recent { n } => n,
        };
        if !(2..=100_000).contains(&n) {
            return Err(invalid(format!(
                "a drift window holds 2 to 100000 points, got {n}"
            )));
        }
        let collection = self.space_collection(&space.name)?;
        // Creation order of every point (ids only; vectors are read for the windows).
        let mut created: Vec<(i64, PointId)> = Vec::new();
        for_each_page(&collection, false, |page| {
            created.extend(page.iter().map(|p| (p.created_at, p.id.clone())));
            Ok(())
        })?;
        created.sort();
        let vectors_of = |ids: Vec<PointId>| -> Result<Vec<f32>> {
            let mut out = Vec::with_capacity(ids.len() * space.dim);
            for chunk in ids.chunks(1024) {
                for p in collection.get(chunk)?.into_iter().flatten() {
                    out.extend_from_slice(&p.vector);
                }
            }
            Ok(out)
        };
        let (reference, recent) = match window {
            DriftWindow::Stored { n } => {
                if created.len() < 2 * n {
                    return Err(invalid(format!(
                        "space `{}` holds {} points; two windows of {n} need {}",
                        space.name,
                        created.len(),
                        2 * n
                    )));
                }
                let old: Vec<PointId> = created[..n].iter().map(|(_, id)| id.clone()).collect();
                let new: Vec<PointId> = created[created.len() - n..]
                    .iter()
                    .map(|(_, id)| id.clone())
                    .collect();
                (vectors_of(old)?, vectors_of(new)?)
            }
            DriftWindow::Recent { n } => {
                let recent = self.recent.snapshot(&space.name);
                if recent.len() < 2 * space.dim {
                    return Err(invalid(format!(
                        "no recent vectors in space `{}` yet (writes and searches in this \
                         process fill the window)",
                        space.name
                    )));
                }
                let old: Vec<PointId> = created.iter().take(n).map(|(_, id)| id.clone()).collect();
                (vectors_of(old)?, recent)
            }
        };
        detect_drift(&reference, &recent, space.dim, config)
    }
}
