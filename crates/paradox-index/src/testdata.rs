//! Test data shared by the index tests.

use rand::{Rng, SeedableRng};

/// Gaussian-mixture data: `clusters` centres, points spread around them.
pub(crate) fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    // Centres depend only on (dim, clusters): data and queries drawn with different seeds
    // come from the same mixture.
    let mut centre_rng = rand::rngs::StdRng::seed_from_u64(0xC3A7 ^ (dim * 1000 + clusters) as u64);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| centre_rng.random_range(-1.0f32..1.0))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        for j in 0..dim {
            let noise: f32 = (0..4).map(|_| rng.random_range(-0.15f32..0.15)).sum();
            data.push(centres[c * dim + j] + noise);
        }
    }
    data
}
