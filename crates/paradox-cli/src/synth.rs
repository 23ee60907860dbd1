//! Seeded synthetic vectors for the demo and the benchmarks.
//!
//! Uniform random vectors are a poor stand-in for embeddings: real embeddings sit in
//! clusters, and within a cluster they vary along a few directions far more than along the
//! rest. [`GaussianMixture`] draws points that way: each cluster has a centre and a handful
//! of random axes with decaying spreads, plus a little isotropic noise.
//!
//! Every row is a pure function of `(seed, row index)`, so any slice of a data set can be
//! regenerated alone, in parallel, and the same seed always gives the same data (within one
//! version of `rand`).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// Number of principal axes per cluster.
const AXES_PER_CLUSTER: usize = 8;
/// Standard deviation of the isotropic noise, per coordinate.
const NOISE: f32 = 0.25;

/// An anisotropic Gaussian mixture in `dim` dimensions.
#[derive(Debug, Clone)]
pub struct GaussianMixture {
    dim: usize,
    clusters: usize,
    seed: u64,
    /// `clusters x dim` centres.
    centres: Vec<f32>,
    /// `clusters x AXES_PER_CLUSTER x dim`: each axis already scaled by its spread.
    axes: Vec<f32>,
}

impl GaussianMixture {
    /// A mixture of `clusters` clusters, fully determined by `seed`.
    pub fn new(dim: usize, clusters: usize, seed: u64) -> GaussianMixture {
        assert!(
            dim > 0 && clusters > 0,
            "dimension and clusters must be positive"
        );
        let mut rng = SmallRng::seed_from_u64(seed);
        let centres = (0..clusters * dim).map(|_| normal(&mut rng)).collect();
        // Spreads decay geometrically along the axes, and each cluster gets its own overall
        // size, so clusters differ in shape and extent, as real topics do.
        let base_spread = 0.35 * (dim as f32).sqrt();
        let mut axes = Vec::with_capacity(clusters * AXES_PER_CLUSTER * dim);
        for _ in 0..clusters {
            let cluster_size: f32 = rng.random_range(0.5..1.5);
            for axis in 0..AXES_PER_CLUSTER {
                let spread = base_spread * cluster_size * 0.7f32.powi(axis as i32);
                let direction: Vec<f32> = (0..dim).map(|_| normal(&mut rng)).collect();
                let norm = direction
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt()
                    .max(1e-12);
                axes.extend(direction.iter().map(|x| x / norm * spread));
            }
        }
        GaussianMixture {
            dim,
            clusters,
            seed,
            centres,
            axes,
        }
    }

    /// Writes row `index` into `out` (`out.len() == dim`); returns its cluster.
    pub fn fill_row(&self, index: u64, out: &mut [f32]) -> usize {
        debug_assert_eq!(out.len(), self.dim);
        let mut rng = row_rng(self.seed, index);
        let cluster = rng.random_range(0..self.clusters);
        out.copy_from_slice(&self.centres[cluster * self.dim..(cluster + 1) * self.dim]);
        let axes = &self.axes[cluster * AXES_PER_CLUSTER * self.dim..];
        for axis in axes.chunks_exact(self.dim).take(AXES_PER_CLUSTER) {
            let coefficient = normal(&mut rng);
            for (o, a) in out.iter_mut().zip(axis) {
                *o += coefficient * a;
            }
        }
        for o in out.iter_mut() {
            *o += NOISE * normal(&mut rng);
        }
        cluster
    }

    /// Fills `out` with rows `start, start + 1, ...` in parallel; returns their clusters.
    pub fn fill_rows(&self, start: u64, out: &mut [f32]) -> Vec<u32> {
        out.par_chunks_mut(self.dim)
            .enumerate()
            .map(|(i, row)| self.fill_row(start + i as u64, row) as u32)
            .collect()
    }

    /// `count` rows starting at `start`, as a flat vector, and their clusters.
    pub fn rows(&self, start: u64, count: usize) -> (Vec<f32>, Vec<u32>) {
        let mut data = vec![0f32; count * self.dim];
        let clusters = self.fill_rows(start, &mut data);
        (data, clusters)
    }
}

/// Fills `out` with uniform values in `[-1, 1)`, in parallel, deterministically from
/// `seed`. Far cheaper than a mixture; for benchmarks where only the bytes matter.
pub fn fill_uniform(seed: u64, out: &mut [f32]) {
    const CHUNK: usize = 1 << 16;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, values)| {
            let mut state = split_mix(seed ^ (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for v in values {
                state = split_mix(state);
                // The top 24 bits make an exact f32 in [0, 1).
                *v = (state >> 40) as f32 * (2.0 / (1u64 << 24) as f32) - 1.0;
            }
        });
}

/// A deterministic random stream for one row of one data set.
pub fn row_rng(seed: u64, index: u64) -> SmallRng {
    SmallRng::seed_from_u64(split_mix(seed ^ split_mix(index)))
}

fn normal(rng: &mut impl Rng) -> f32 {
    StandardNormal.sample(rng)
}

/// SplitMix64's finaliser: a cheap, well-mixed hash of a 64-bit value.
fn split_mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_rows_and_rows_are_independent_of_batching() {
        let a = GaussianMixture::new(16, 4, 7);
        let b = GaussianMixture::new(16, 4, 7);
        let (all, clusters) = a.rows(0, 10);
        let (tail, tail_clusters) = b.rows(6, 4);
        assert_eq!(&all[6 * 16..], &tail[..]);
        assert_eq!(&clusters[6..], &tail_clusters[..]);
        let (other, _) = GaussianMixture::new(16, 4, 8).rows(0, 10);
        assert_ne!(all, other);
    }

    #[test]
    fn points_are_closer_to_their_own_centre() {
        let mixture = GaussianMixture::new(64, 8, 1);
        let (data, clusters) = mixture.rows(0, 400);
        let mut own_is_nearest = 0;
        for (row, &cluster) in data.chunks_exact(64).zip(&clusters) {
            let nearest = (0..8)
                .min_by(|&x, &y| {
                    let dx = paradox_kernels::l2_squared(row, &mixture.centres[x * 64..][..64]);
                    let dy = paradox_kernels::l2_squared(row, &mixture.centres[y * 64..][..64]);
                    dx.total_cmp(&dy)
                })
                .unwrap();
            own_is_nearest += usize::from(nearest == cluster as usize);
        }
        assert!(own_is_nearest >= 390, "{own_is_nearest} of 400");
        // Every cluster is used.
        assert!((0..8).all(|c| clusters.contains(&c)));
    }

    #[test]
    fn uniform_fill_is_deterministic_and_in_range() {
        let mut a = vec![0f32; 200_000];
        let mut b = vec![0f32; 200_000];
        fill_uniform(3, &mut a);
        fill_uniform(3, &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| (-1.0..1.0).contains(&x)));
        let mean = a.iter().map(|&x| x as f64).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.01, "{mean}");
    }
}
