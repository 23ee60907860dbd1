//! Data shared by the examples.

use rand::{Rng, SeedableRng};

/// Gaussian-mixture data, as in the HNSW tests.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
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
