//! Novelty search: reward being different, not being good. The novelty of a behaviour
//! is its **mean Euclidean distance to its `k` nearest neighbours** among the archive
//! (and, optionally, the current population). Deceptive problems, where the fitness
//! gradient leads into a trap, are solved by exploring behaviours instead.
//!
//! [`NoveltyArchive`] keeps behaviours in memory; [`EngineNoveltyArchive`] keeps them
//! in a Paradox collection (metric `l2`), so the archive persists, can be large, and
//! is searched by the engine's index.

use super::dist2;
use crate::error::{MindError, Result};
use paradox_engine::{Collection, Metric, NewPoint, PointId, SearchRequest};
use std::sync::Arc;

/// In-memory novelty archive.
#[derive(Debug, Clone)]
pub struct NoveltyArchive {
    /// Neighbours averaged.
    pub k: usize,
    behaviors: Vec<Vec<f64>>,
}

impl NoveltyArchive {
    /// An empty archive averaging over `k` neighbours.
    pub fn new(k: usize) -> Self {
        NoveltyArchive {
            k: k.max(1),
            behaviors: Vec::new(),
        }
    }

    /// Archived behaviours.
    pub fn behaviors(&self) -> &[Vec<f64>] {
        &self.behaviors
    }

    /// Adds a behaviour.
    pub fn add(&mut self, behavior: Vec<f64>) {
        self.behaviors.push(behavior);
    }

    /// Mean distance from `behavior` to its `k` nearest among the archive and
    /// `others` (pass the population; an entry equal to `behavior` itself at index
    /// `skip` is left out). Infinite when there is nothing to compare with.
    pub fn novelty(&self, behavior: &[f64], others: &[Vec<f64>], skip: Option<usize>) -> f64 {
        let mut d: Vec<f64> = self
            .behaviors
            .iter()
            .map(|b| dist2(b, behavior).sqrt())
            .chain(
                others
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != skip)
                    .map(|(_, b)| dist2(b, behavior).sqrt()),
            )
            .collect();
        if d.is_empty() {
            return f64::INFINITY;
        }
        let k = self.k.min(d.len());
        d.select_nth_unstable_by(k - 1, f64::total_cmp);
        d[..k].iter().sum::<f64>() / k as f64
    }
}

/// A novelty archive stored in a Paradox collection (numeric ids `0, 1, 2, …`).
#[derive(Debug)]
pub struct EngineNoveltyArchive {
    collection: Arc<Collection>,
    /// Neighbours averaged.
    pub k: usize,
    next_id: u64,
}

impl EngineNoveltyArchive {
    /// Uses `collection` (metric `l2`, dimension = behaviour length) as the archive;
    /// existing points count as archived behaviours.
    pub fn new(collection: Arc<Collection>, k: usize) -> Result<Self> {
        if collection.config().metric != Metric::L2 {
            return Err(MindError::invalid(
                "collection",
                format!(
                    "novelty archive `{}` must use the l2 metric, not {}",
                    collection.name(),
                    collection.config().metric.as_str()
                ),
            ));
        }
        let next_id = collection.count(None)? as u64;
        Ok(EngineNoveltyArchive {
            collection,
            k: k.max(1),
            next_id,
        })
    }

    /// Archives behaviours (one write).
    pub fn add(&mut self, behaviors: &[Vec<f64>]) -> Result<()> {
        let points = behaviors
            .iter()
            .map(|b| {
                let id = self.next_id;
                self.next_id += 1;
                NewPoint::new(id, b.iter().map(|v| *v as f32).collect())
            })
            .collect();
        self.collection.upsert(points)?;
        Ok(())
    }

    /// Mean distance from each behaviour to its `k` nearest archived ones (one batch
    /// search). Infinite while the archive is empty.
    pub fn novelty(&self, behaviors: &[Vec<f64>]) -> Result<Vec<f64>> {
        if self.collection.count(None)? == 0 {
            return Ok(vec![f64::INFINITY; behaviors.len()]);
        }
        let requests: Vec<SearchRequest> = behaviors
            .iter()
            .map(|b| SearchRequest::new(b.iter().map(|v| *v as f32).collect(), self.k))
            .collect();
        let results = self.collection.search_batch(&requests)?;
        Ok(results
            .iter()
            .map(|hits| {
                hits.iter()
                    .map(|h| (h.score.max(0.0) as f64).sqrt())
                    .sum::<f64>()
                    / hits.len().max(1) as f64
            })
            .collect())
    }

    /// The behaviour archived under `id`.
    pub fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        Ok(self
            .collection
            .get(&[PointId::Num(id)])?
            .pop()
            .flatten()
            .map(|p| p.vector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paradox_engine::{CollectionConfig, Engine};
    use rand::Rng;

    #[test]
    fn engine_archive_matches_brute_force() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let col = engine
            .create_collection(CollectionConfig::new("archive", 3, Metric::L2))
            .unwrap();
        let mut archive = EngineNoveltyArchive::new(col, 5).unwrap();
        let mut memory = NoveltyArchive::new(5);
        let mut rng = crate::evolution::seeded_rng(9);
        let behaviors: Vec<Vec<f64>> = (0..200)
            .map(|_| (0..3).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        archive.add(&behaviors).unwrap();
        for b in &behaviors {
            memory.add(b.clone());
        }
        let probes: Vec<Vec<f64>> = (0..20)
            .map(|_| (0..3).map(|_| rng.random_range(-1.5..1.5)).collect())
            .collect();
        let from_engine = archive.novelty(&probes).unwrap();
        for (probe, got) in probes.iter().zip(from_engine) {
            let mut d: Vec<f64> = behaviors.iter().map(|b| dist2(b, probe).sqrt()).collect();
            d.sort_by(f64::total_cmp);
            let expected = d[..5].iter().sum::<f64>() / 5.0;
            assert!(
                (got - expected).abs() < 1e-4,
                "engine {got} vs brute force {expected}"
            );
            assert!((memory.novelty(probe, &[], None) - expected).abs() < 1e-12);
        }
    }

    #[test]
    fn population_members_do_not_count_themselves() {
        let archive = NoveltyArchive::new(1);
        let pop = vec![vec![0.0], vec![3.0]];
        assert_eq!(archive.novelty(&pop[0], &pop, Some(0)), 3.0);
        assert_eq!(archive.novelty(&pop[0], &pop, None), 0.0);
    }
}
