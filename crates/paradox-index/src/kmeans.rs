//! k-means clustering: the coarse quantiser of IVF, the codebooks of PQ, and (later) the
//! latent regions a cluster routes by.
//!
//! Lloyd's algorithm with k-means++ seeding (on a cache-sized subsample: seeding makes one
//! pass over its rows per centroid), run on a uniform sample of at most
//! `max_points_per_centroid × k` rows (more rows barely move the centroids but cost time
//! linearly). Assignment uses the blocked many-vs-many L2 kernel, a block of rows against
//! every centroid at a time, in parallel over row blocks. A centroid that loses all its
//! points is re-seeded by splitting the largest cluster, so `k` centroids always come back.
//!
//! With [`KMeansParams::balanced`], each assignment step caps cluster sizes at
//! `⌈n/k⌉ × (1 + slack)`: points claim their nearest centroid with room, the most
//! decided points (largest gap between their first and second choice) first. Balanced
//! lists bound the worst-case cost of visiting a list.

use paradox_kernels::l2_squared_many_to_many;
use rayon::prelude::*;

/// How to cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansParams {
    /// Number of clusters.
    pub k: usize,
    /// Lloyd iterations after seeding.
    pub iterations: usize,
    /// Rows sampled per centroid for training (the rest are only assigned).
    pub max_points_per_centroid: usize,
    /// Seed of the sampling and the k-means++ draws.
    pub seed: u64,
    /// Cap cluster sizes (see the module docs).
    pub balanced: bool,
    /// With `balanced`: allowed excess over the mean cluster size (0.1 = 10%).
    pub balance_slack: f32,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            k: 256,
            iterations: 20,
            max_points_per_centroid: 256,
            seed: 0x5EED,
            balanced: false,
            balance_slack: 0.1,
        }
    }
}

/// Why clustering could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KMeansError(pub String);

impl std::fmt::Display for KMeansError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "k-means: {}", self.0)
    }
}

impl std::error::Error for KMeansError {}

/// Rows k-means++ seeding runs on (at least 4 per centroid).
const SEED_ROWS: usize = 16_384;
/// Rows per assignment block (the distance tile is `BLOCK × CENTROID_BLOCK` floats).
const BLOCK: usize = 256;
/// Centroids per assignment tile.
const CENTROID_BLOCK: usize = 2048;

/// A small deterministic generator (splitmix64): sampling needs reproducibility, not
/// cryptographic quality.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// Clusters the rows of `data` (`dim` values each) into `params.k` centroids
/// (row-major, `k × dim`).
pub fn train(data: &[f32], dim: usize, params: &KMeansParams) -> Result<Vec<f32>, KMeansError> {
    let n = data.len().checked_div(dim).unwrap_or(0);
    let k = params.k;
    if k == 0 {
        return Err(KMeansError("k must be at least 1".into()));
    }
    if n < k {
        return Err(KMeansError(format!(
            "{n} training rows cannot make {k} clusters"
        )));
    }
    let mut rng = SplitMix::new(params.seed);
    let sample = sample_rows(
        data,
        dim,
        k * params.max_points_per_centroid.max(1),
        &mut rng,
    );
    let sample: &[f32] = sample.as_deref().unwrap_or(data);
    // Seeding passes over its rows once per centroid: on a subsample small enough to stay
    // in cache (but several rows per centroid), it costs little and seeds as well.
    let seed_rows = sample_rows(sample, dim, (4 * k).max(SEED_ROWS), &mut rng);
    let mut centroids = seed_plus_plus(seed_rows.as_deref().unwrap_or(sample), dim, k, &mut rng);
    let n_sample = sample.len() / dim;
    let mut assignment = vec![0u32; n_sample];
    for _ in 0..params.iterations {
        if params.balanced {
            assign_balanced(
                sample,
                dim,
                &centroids,
                params.balance_slack,
                &mut assignment,
            );
        } else {
            for (slot, (c, _)) in assignment.iter_mut().zip(assign(sample, dim, &centroids)) {
                *slot = c;
            }
        }
        let moved = update_centroids(sample, dim, &assignment, &mut centroids, &mut rng);
        if !moved {
            break;
        }
    }
    Ok(centroids)
}

/// The nearest centroid of every row and its squared distance, in parallel.
pub fn assign(data: &[f32], dim: usize, centroids: &[f32]) -> Vec<(u32, f32)> {
    assign_on(data, dim, centroids, true)
}

/// [`assign`] on the calling thread alone: for small batches on a latency-sensitive
/// path (a write), where splitting the work onto rayon's global pool would queue it
/// among the searches that pool serves.
pub fn assign_serial(data: &[f32], dim: usize, centroids: &[f32]) -> Vec<(u32, f32)> {
    assign_on(data, dim, centroids, false)
}

fn assign_on(data: &[f32], dim: usize, centroids: &[f32], parallel: bool) -> Vec<(u32, f32)> {
    let mut out = vec![(0u32, f32::INFINITY); data.len() / dim.max(1)];
    if dim == 0 || centroids.is_empty() {
        return out;
    }
    if parallel {
        out.par_chunks_mut(BLOCK)
            .zip(data.par_chunks(BLOCK * dim))
            .for_each(|(best, rows)| nearest_block(rows, dim, centroids, best));
    } else {
        for (best, rows) in out.chunks_mut(BLOCK).zip(data.chunks(BLOCK * dim)) {
            nearest_block(rows, dim, centroids, best);
        }
    }
    out
}

/// Nearest centroid for each row of one block.
fn nearest_block(rows: &[f32], dim: usize, centroids: &[f32], best: &mut [(u32, f32)]) {
    let nr = rows.len() / dim;
    let mut tile = vec![0f32; nr * CENTROID_BLOCK.min(centroids.len() / dim)];
    for (cb, chunk) in centroids.chunks(CENTROID_BLOCK * dim).enumerate() {
        let nc = chunk.len() / dim;
        let tile = &mut tile[..nr * nc];
        l2_squared_many_to_many(rows, chunk, dim, tile);
        for (r, slot) in best.iter_mut().enumerate() {
            let (c, d) = argmin(&tile[r * nc..(r + 1) * nc]);
            if d < slot.1 {
                *slot = ((cb * CENTROID_BLOCK + c) as u32, d);
            }
        }
    }
}

/// Position and value of the smallest element (the first one on ties; `(0, inf)` when
/// empty). Eight independent lanes with branch-free updates, so it vectorises.
fn argmin(values: &[f32]) -> (usize, f32) {
    const LANES: usize = 8;
    let mut best = [f32::INFINITY; LANES];
    let mut at = [0u32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for (c, chunk) in chunks.enumerate() {
        for lane in 0..LANES {
            let v = chunk[lane];
            let better = v < best[lane];
            best[lane] = if better { v } else { best[lane] };
            at[lane] = if better {
                (c * LANES + lane) as u32
            } else {
                at[lane]
            };
        }
    }
    let mut result = (0usize, f32::INFINITY);
    for lane in 0..LANES {
        let (i, v) = (at[lane] as usize, best[lane]);
        if v < result.1 || (v == result.1 && i < result.0) {
            result = (i, v);
        }
    }
    let base = values.len() - tail.len();
    for (i, &v) in tail.iter().enumerate() {
        if v < result.1 {
            result = (base + i, v);
        }
    }
    result
}

/// A uniform sample of `max_rows` rows (without replacement), or `None` when every row
/// fits.
fn sample_rows(data: &[f32], dim: usize, max_rows: usize, rng: &mut SplitMix) -> Option<Vec<f32>> {
    let n = data.len() / dim;
    if n <= max_rows {
        return None;
    }
    // Partial Fisher-Yates over row numbers, then sorted for a forward read of `data`.
    let mut rows: Vec<u32> = (0..n as u32).collect();
    for i in 0..max_rows {
        let j = i + rng.below(n - i);
        rows.swap(i, j);
    }
    let mut picked = rows[..max_rows].to_vec();
    picked.sort_unstable();
    let mut out = Vec::with_capacity(max_rows * dim);
    for r in picked {
        out.extend_from_slice(&data[r as usize * dim..(r as usize + 1) * dim]);
    }
    Some(out)
}

/// k-means++ seeding: each next centroid is drawn with probability proportional to the
/// squared distance to the nearest centroid chosen so far.
fn seed_plus_plus(data: &[f32], dim: usize, k: usize, rng: &mut SplitMix) -> Vec<f32> {
    let n = data.len() / dim;
    let mut centroids = Vec::with_capacity(k * dim);
    let first = rng.below(n);
    centroids.extend_from_slice(&data[first * dim..(first + 1) * dim]);
    let mut nearest = vec![f32::INFINITY; n];
    for c in 1..=k {
        let latest = &centroids[(c - 1) * dim..c * dim];
        nearest
            .par_chunks_mut(BLOCK)
            .zip(data.par_chunks(BLOCK * dim))
            .for_each(|(near, rows)| {
                let mut d = [0f32; BLOCK];
                let d = &mut d[..near.len()];
                paradox_kernels::l2_squared_one_to_many(latest, rows, d);
                for (m, &x) in near.iter_mut().zip(d.iter()) {
                    *m = m.min(x);
                }
            });
        if c == k {
            break;
        }
        let total: f64 = nearest.par_iter().map(|&d| d as f64).sum();
        let pick = if total > 0.0 {
            let mut target = rng.next_f64() * total;
            let mut chosen = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                target -= d as f64;
                if target < 0.0 {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            // Every row coincides with a centroid: duplicates are unavoidable.
            rng.below(n)
        };
        centroids.extend_from_slice(&data[pick * dim..(pick + 1) * dim]);
    }
    centroids
}

/// Moves each centroid to the mean of its rows; re-seeds empty ones by splitting the
/// largest cluster. Returns whether any assignment-driven mean changed.
fn update_centroids(
    data: &[f32],
    dim: usize,
    assignment: &[u32],
    centroids: &mut [f32],
    rng: &mut SplitMix,
) -> bool {
    let k = centroids.len() / dim;
    let (sums, counts) = data
        .par_chunks(BLOCK * dim)
        .zip(assignment.par_chunks(BLOCK))
        .fold(
            || (vec![0f64; k * dim], vec![0usize; k]),
            |(mut sums, mut counts), (rows, assigned)| {
                for (row, &c) in rows.chunks_exact(dim).zip(assigned) {
                    let c = c as usize;
                    counts[c] += 1;
                    for (s, &x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
                        *s += x as f64;
                    }
                }
                (sums, counts)
            },
        )
        .reduce(
            || (vec![0f64; k * dim], vec![0usize; k]),
            |(mut a, mut ca), (b, cb)| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                ca.iter_mut().zip(&cb).for_each(|(x, y)| *x += y);
                (a, ca)
            },
        );
    let mut moved = false;
    for c in 0..k {
        if counts[c] == 0 {
            continue;
        }
        let inv = 1.0 / counts[c] as f64;
        for (slot, &s) in centroids[c * dim..(c + 1) * dim]
            .iter_mut()
            .zip(&sums[c * dim..(c + 1) * dim])
        {
            let v = (s * inv) as f32;
            moved |= v != *slot;
            *slot = v;
        }
    }
    // Empty clusters: copy the largest cluster's centroid with a small symmetric
    // perturbation, so the next assignment splits that cluster between the two.
    let mut counts = counts;
    for c in 0..k {
        if counts[c] != 0 {
            continue;
        }
        let largest = (0..k).max_by_key(|&j| counts[j]).unwrap_or(0);
        if counts[largest] < 2 {
            continue;
        }
        for d in 0..dim {
            let base = centroids[largest * dim + d];
            let eps =
                (base.abs().max(1e-6)) * 1e-3 * if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            centroids[c * dim + d] = base + eps;
            centroids[largest * dim + d] = base - eps;
        }
        counts[c] = counts[largest] / 2;
        counts[largest] -= counts[c];
        moved = true;
    }
    moved
}

/// Candidates considered per row by the balanced assignment.
const BALANCE_CANDIDATES: usize = 8;

/// Capacity-capped assignment (see the module docs).
fn assign_balanced(data: &[f32], dim: usize, centroids: &[f32], slack: f32, out: &mut [u32]) {
    let n = data.len() / dim;
    let k = centroids.len() / dim;
    let t = BALANCE_CANDIDATES.min(k);
    // Top-t centroids of every row.
    let mut candidates = vec![(0u32, 0f32); n * t];
    candidates
        .par_chunks_mut(BLOCK * t)
        .zip(data.par_chunks(BLOCK * dim))
        .for_each(|(cands, rows)| {
            let nr = rows.len() / dim;
            let mut tile = vec![0f32; k];
            for r in 0..nr {
                paradox_kernels::l2_squared_one_to_many(
                    &rows[r * dim..(r + 1) * dim],
                    centroids,
                    &mut tile,
                );
                let mut top = paradox_kernels::TopK::new(t);
                top.push_block(0, &tile);
                for (slot, nb) in cands[r * t..(r + 1) * t]
                    .iter_mut()
                    .zip(top.into_sorted_vec())
                {
                    *slot = (nb.key as u32, nb.distance);
                }
            }
        });
    let mean = n.div_ceil(k);
    let capacity = ((mean as f64 * (1.0 + slack.max(0.0) as f64)).floor() as usize).max(mean);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let gap = |r: u32| {
        let c = &candidates[r as usize * t..(r as usize + 1) * t];
        if t > 1 {
            c[1].1 - c[0].1
        } else {
            0.0
        }
    };
    order.sort_unstable_by(|&a, &b| gap(b).total_cmp(&gap(a)));
    let mut sizes = vec![0usize; k];
    for r in order {
        let c = &candidates[r as usize * t..(r as usize + 1) * t];
        let chosen = c
            .iter()
            .find(|(id, _)| sizes[*id as usize] < capacity)
            .unwrap_or(&c[0])
            .0;
        sizes[chosen as usize] += 1;
        out[r as usize] = chosen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `clusters` well-separated blobs of `per` points each.
    fn blobs(clusters: usize, per: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix::new(seed);
        let mut out = Vec::new();
        for c in 0..clusters {
            for _ in 0..per {
                for d in 0..dim {
                    let center = if d % clusters == c { 100.0 } else { 0.0 };
                    out.push(center + rng.next_f64() as f32);
                }
            }
        }
        out
    }

    #[test]
    fn recovers_separated_blobs() {
        let (clusters, per, dim) = (8, 50, 16);
        let data = blobs(clusters, per, dim, 7);
        let params = KMeansParams {
            k: clusters,
            ..Default::default()
        };
        let centroids = train(&data, dim, &params).unwrap();
        let assigned = assign(&data, dim, &centroids);
        // Every blob maps to one centroid, and different blobs to different centroids.
        let mut owner = vec![u32::MAX; clusters];
        for (i, (c, d)) in assigned.iter().enumerate() {
            let blob = i / per;
            if owner[blob] == u32::MAX {
                owner[blob] = *c;
            }
            assert_eq!(owner[blob], *c, "blob {blob} split");
            assert!(*d < dim as f32, "distance {d} too large");
        }
        let mut distinct = owner.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), clusters);
    }

    #[test]
    fn assign_matches_brute_force() {
        let dim = 5;
        let data = blobs(3, 40, dim, 3);
        let centroids = blobs(3, 4, dim, 9);
        let got = assign(&data, dim, &centroids);
        for (row, (c, d)) in data.chunks(dim).zip(got) {
            let brute = centroids
                .chunks(dim)
                .map(|x| paradox_kernels::l2_squared(row, x))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            // The blocked kernel computes ‖q‖² + ‖x‖² − 2q·x: its error scales with the norms.
            let scale = paradox_kernels::norm_squared(row) + 1e4;
            assert!((brute.1 - d).abs() <= 1e-6 * scale, "{} vs {d}", brute.1);
            assert!(
                c as usize == brute.0 || (brute.1 - d).abs() <= 1e-6 * scale,
                "row assigned to {c}, nearest is {}",
                brute.0
            );
        }
    }

    #[test]
    fn returns_k_centroids_even_with_duplicates() {
        let dim = 4;
        let mut data = vec![1.0f32; 100 * dim];
        data.extend(blobs(2, 10, dim, 1));
        let centroids = train(
            &data,
            dim,
            &KMeansParams {
                k: 6,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(centroids.len(), 6 * dim);
        assert!(centroids.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn balanced_caps_cluster_sizes() {
        // One dense blob and a sparse spread: plain k-means gives lopsided sizes.
        let dim = 2;
        let mut rng = SplitMix::new(5);
        let mut data = Vec::new();
        for i in 0..1000 {
            let spread = if i < 800 { 1.0 } else { 50.0 };
            data.push(rng.next_f64() as f32 * spread);
            data.push(rng.next_f64() as f32 * spread);
        }
        let params = KMeansParams {
            k: 10,
            balanced: true,
            balance_slack: 0.2,
            ..Default::default()
        };
        let centroids = train(&data, dim, &params).unwrap();
        let mut assignment = vec![0u32; 1000];
        assign_balanced(&data, dim, &centroids, 0.2, &mut assignment);
        let mut sizes = vec![0usize; 10];
        for c in assignment {
            sizes[c as usize] += 1;
        }
        assert!(sizes.iter().all(|&s| s <= 120), "sizes {sizes:?}");
    }

    #[test]
    fn argmin_finds_the_first_smallest() {
        assert_eq!(argmin(&[]), (0, f32::INFINITY));
        let mut v: Vec<f32> = (0..37).map(|i| (i as f32 - 20.0).abs()).collect();
        assert_eq!(argmin(&v), (20, 0.0));
        v[3] = -1.0;
        v[35] = -1.0;
        assert_eq!(argmin(&v), (3, -1.0));
        v[36] = -2.0;
        assert_eq!(argmin(&v), (36, -2.0));
    }

    #[test]
    fn rejects_too_few_rows() {
        let err = train(&[0.0; 8], 4, &KMeansParams::default()).unwrap_err();
        assert!(err.0.contains("cannot make 256 clusters"), "{err}");
    }
}
