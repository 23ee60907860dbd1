//! Trajectories: how an entity's vector moves through latent space over time.
//!
//! A [`Trajectory`] is a time-ordered sequence of `(timestamp_ms, vector)` samples.
//! From it: velocities (units per second), speeds, discrete curvature, as-of lookups,
//! interpolation, and [`Prediction`]s of where the vector will be (linear, average
//! velocity, constant-velocity Kalman filter, autoregressive model of the increments).
//! [`TrajectorySet`] answers nearest-neighbour queries **as of** a past time over
//! samples the caller recorded.
//!
//! Collections created with `history: true` keep every version of every point:
//! [`Trajectory::of`] reads a point's trajectory from the engine, and the engine's own
//! `SearchRequest::as_of` searches the whole collection as it was at a past time.

mod predict;

pub use predict::Prediction;

use crate::error::{MindError, Result};
use paradox_engine::{Collection, Metric, Point, PointId, ScoredPoint};
use paradox_kernels::dot;
use std::collections::BTreeMap;

/// A time-ordered sequence of vectors of one entity (timestamps in milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    times: Vec<i64>,
    vectors: Vec<Vec<f32>>,
}

impl Trajectory {
    /// A trajectory from samples in any order. Fails on an empty input, unequal
    /// lengths, or two samples at the same time.
    pub fn new(mut samples: Vec<(i64, Vec<f32>)>) -> Result<Trajectory> {
        if samples.is_empty() {
            return Err(MindError::invalid(
                "samples",
                "a trajectory needs at least one sample",
            ));
        }
        samples.sort_by_key(|(t, _)| *t);
        let dim = samples[0].1.len();
        for pair in samples.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(MindError::invalid(
                    "samples",
                    format!("two samples at time {}", pair[0].0),
                ));
            }
        }
        if let Some((_, v)) = samples.iter().find(|(_, v)| v.len() != dim) {
            return Err(MindError::Dimension {
                context: "trajectory sample",
                expected: dim,
                got: v.len(),
            });
        }
        let (times, vectors) = samples.into_iter().unzip();
        Ok(Trajectory { times, vectors })
    }

    /// A trajectory from successive versions of a point (e.g. what `get` returned over
    /// time), stamped with their `updated_at`.
    pub fn from_points(points: &[Point]) -> Result<Trajectory> {
        Trajectory::new(
            points
                .iter()
                .map(|p| (p.updated_at, p.vector.clone()))
                .collect(),
        )
    }

    /// The trajectory of point `id` from every version the collection kept (its
    /// `updated_at` times; a point rewritten twice in one millisecond keeps the later
    /// vector for that instant). Needs a collection created with `history: true`.
    pub fn of(collection: &Collection, id: &PointId) -> Result<Trajectory> {
        let versions = collection.history(id)?;
        if versions.is_empty() {
            return Err(MindError::PointNotFound {
                collection: collection.name().to_string(),
                id: id.clone(),
            });
        }
        let mut samples: Vec<(i64, Vec<f32>)> = Vec::with_capacity(versions.len());
        for version in versions {
            let t = version.point.updated_at;
            match samples.last_mut() {
                Some(last) if last.0 == t => last.1 = version.point.vector,
                _ => samples.push((t, version.point.vector)),
            }
        }
        Trajectory::new(samples)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Always false (a trajectory has at least one sample).
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Vector length.
    pub fn dimension(&self) -> usize {
        self.vectors[0].len()
    }

    /// Sample times, ascending.
    pub fn times(&self) -> &[i64] {
        &self.times
    }

    /// Sample vectors, in time order.
    pub fn vectors(&self) -> &[Vec<f32>] {
        &self.vectors
    }

    /// The vector as of `t`: the latest sample at or before `t` (`None` before the
    /// first sample).
    pub fn at(&self, t: i64) -> Option<&[f32]> {
        let idx = self.times.partition_point(|&s| s <= t);
        (idx > 0).then(|| self.vectors[idx - 1].as_slice())
    }

    /// Linear interpolation between the samples around `t` (clamped to the ends).
    pub fn interpolate(&self, t: i64) -> Vec<f32> {
        let idx = self.times.partition_point(|&s| s <= t);
        if idx == 0 {
            return self.vectors[0].clone();
        }
        if idx == self.len() {
            return self.vectors[idx - 1].clone();
        }
        let (t0, t1) = (self.times[idx - 1], self.times[idx]);
        let w = (t - t0) as f32 / (t1 - t0) as f32;
        crate::reasoning::lerp(&self.vectors[idx - 1], &self.vectors[idx], w)
    }

    /// Velocity of each segment (units per second), stamped at the segment's end.
    pub fn velocities(&self) -> Vec<(i64, Vec<f32>)> {
        self.times
            .windows(2)
            .zip(self.vectors.windows(2))
            .map(|(t, v)| {
                let dt = (t[1] - t[0]) as f32 / 1000.0;
                (
                    t[1],
                    v[1].iter().zip(&v[0]).map(|(b, a)| (b - a) / dt).collect(),
                )
            })
            .collect()
    }

    /// Speed (norm of velocity) of each segment, units per second.
    pub fn speeds(&self) -> Vec<f32> {
        self.velocities()
            .iter()
            .map(|(_, v)| dot(v, v).sqrt())
            .collect()
    }

    /// Discrete curvature at each interior sample: the turning angle between the
    /// incoming and outgoing displacement divided by the mean of their lengths
    /// (radians per unit of distance; 0 on a straight line, `1/r` on a circle of
    /// radius `r` sampled finely).
    pub fn curvature(&self) -> Vec<f32> {
        self.vectors
            .windows(3)
            .map(|w| {
                let a: Vec<f32> = w[1].iter().zip(&w[0]).map(|(y, x)| y - x).collect();
                let b: Vec<f32> = w[2].iter().zip(&w[1]).map(|(y, x)| y - x).collect();
                let (la, lb) = (dot(&a, &a).sqrt(), dot(&b, &b).sqrt());
                if la == 0.0 || lb == 0.0 {
                    return 0.0;
                }
                let cos = (dot(&a, &b) / (la * lb)).clamp(-1.0, 1.0);
                cos.acos() / (0.5 * (la + lb))
            })
            .collect()
    }

    /// Where the vector will be at time `t` (milliseconds) by `method`.
    pub fn predict(&self, t: i64, method: &Prediction) -> Result<Vec<f32>> {
        predict::predict(self, t, method)
    }
}

/// Many entities' trajectories, searchable as of a time.
#[derive(Debug, Clone, Default)]
pub struct TrajectorySet {
    trajectories: BTreeMap<PointId, Trajectory>,
}

impl TrajectorySet {
    /// An empty set.
    pub fn new() -> Self {
        TrajectorySet::default()
    }

    /// Records `vector` for `id` at time `t` (replacing a sample at the same time).
    pub fn record(&mut self, id: PointId, t: i64, vector: Vec<f32>) -> Result<()> {
        match self.trajectories.get_mut(&id) {
            None => {
                self.trajectories
                    .insert(id, Trajectory::new(vec![(t, vector)])?);
            }
            Some(traj) => {
                if vector.len() != traj.dimension() {
                    return Err(MindError::Dimension {
                        context: "trajectory sample",
                        expected: traj.dimension(),
                        got: vector.len(),
                    });
                }
                let idx = traj.times.partition_point(|&s| s < t);
                if traj.times.get(idx) == Some(&t) {
                    traj.vectors[idx] = vector;
                } else {
                    traj.times.insert(idx, t);
                    traj.vectors.insert(idx, vector);
                }
            }
        }
        Ok(())
    }

    /// The trajectory of `id`.
    pub fn get(&self, id: &PointId) -> Option<&Trajectory> {
        self.trajectories.get(id)
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.trajectories.len()
    }

    /// True when no entity was recorded.
    pub fn is_empty(&self) -> bool {
        self.trajectories.is_empty()
    }

    /// Exact `k` nearest entities to `query` using each entity's vector as of `t`
    /// (entities with no sample at or before `t` are skipped). Scores follow the
    /// engine's convention: squared distance for l2 (ascending), similarity otherwise.
    pub fn search_as_of(
        &self,
        query: &[f32],
        t: i64,
        k: usize,
        metric: Metric,
    ) -> Vec<ScoredPoint> {
        let mut hits: Vec<ScoredPoint> = self
            .trajectories
            .iter()
            .filter_map(|(id, traj)| {
                let v = traj.at(t)?;
                let score = match metric {
                    Metric::L2 => paradox_kernels::l2_squared(query, v),
                    Metric::Dot => dot(query, v),
                    Metric::Cosine => paradox_kernels::cosine_similarity(query, v),
                };
                Some(ScoredPoint {
                    id: id.clone(),
                    score,
                    payload: None,
                    vector: None,
                })
            })
            .collect();
        match metric {
            Metric::L2 => hits.sort_by(|a, b| a.score.total_cmp(&b.score)),
            _ => hits.sort_by(|a, b| b.score.total_cmp(&a.score)),
        }
        hits.truncate(k);
        hits
    }
}

#[cfg(test)]
mod tests;
