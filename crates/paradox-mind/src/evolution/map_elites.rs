//! MAP-Elites (Mouret & Clune 2015): keep the best solution found in every cell of a
//! behaviour space, and generate new solutions by mutating elites, so the result is a
//! map of diverse high performers rather than one optimum.
//!
//! Cells are a regular grid over a box of behaviour space, or the Voronoi cells of
//! `k` centroids placed by k-means over uniform samples (CVT-MAP-Elites, Vassiliades et
//! al. 2018), which scales to many behaviour dimensions. Lower fitness is better.
//! Variation is iso+line (Vassiliades & Mouret 2018): `x_i + σ_iso·N(0, I) +
//! σ_line·N(0, 1)·(x_j − x_i)` for two random elites.

use super::{dist2, seeded_rng};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// One occupied cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Elite {
    /// The solution.
    pub x: Vec<f64>,
    /// Its fitness (lower is better).
    pub fitness: f64,
    /// Its behaviour descriptor.
    pub behavior: Vec<f64>,
}

#[derive(Debug, Clone)]
enum Cells {
    Grid {
        lower: Vec<f64>,
        upper: Vec<f64>,
        bins: usize,
    },
    Voronoi {
        centroids: Vec<Vec<f64>>,
    },
}

/// A MAP-Elites archive with its variation operator.
#[derive(Debug, Clone)]
pub struct MapElites {
    cells: Cells,
    elites: Vec<Option<Elite>>,
    /// Isotropic mutation step.
    pub sigma_iso: f64,
    /// Step along the line between two elites.
    pub sigma_line: f64,
    rng: StdRng,
}

impl MapElites {
    /// A grid of `bins` per behaviour dimension over `[lower, upper]`.
    pub fn grid(lower: Vec<f64>, upper: Vec<f64>, bins: usize, seed: u64) -> MapElites {
        assert_eq!(lower.len(), upper.len(), "bounds of unequal length");
        let count = bins.max(1).pow(lower.len() as u32);
        MapElites {
            cells: Cells::Grid {
                lower,
                upper,
                bins: bins.max(1),
            },
            elites: vec![None; count],
            sigma_iso: 0.01,
            sigma_line: 0.2,
            rng: seeded_rng(seed),
        }
    }

    /// CVT cells: `k` centroids from k-means (20 Lloyd iterations) over `samples`
    /// uniform points of the box `[lower, upper]`.
    pub fn cvt(lower: Vec<f64>, upper: Vec<f64>, k: usize, samples: usize, seed: u64) -> MapElites {
        let mut rng = seeded_rng(seed);
        let uniform = |rng: &mut StdRng| -> Vec<f64> {
            lower
                .iter()
                .zip(&upper)
                .map(|(l, u)| rng.random_range(*l..=*u))
                .collect()
        };
        let points: Vec<Vec<f64>> = (0..samples.max(k)).map(|_| uniform(&mut rng)).collect();
        let mut centroids: Vec<Vec<f64>> = points[..k].to_vec();
        let dim = lower.len();
        for _ in 0..20 {
            let mut sums = vec![vec![0.0; dim]; k];
            let mut counts = vec![0usize; k];
            for p in &points {
                let c = nearest(&centroids, p);
                counts[c] += 1;
                for (s, v) in sums[c].iter_mut().zip(p) {
                    *s += v;
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    centroids[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
                } else {
                    centroids[c] = uniform(&mut rng);
                }
            }
        }
        MapElites {
            cells: Cells::Voronoi { centroids },
            elites: vec![None; k],
            sigma_iso: 0.01,
            sigma_line: 0.2,
            rng,
        }
    }

    /// The cell of a behaviour.
    pub fn cell_of(&self, behavior: &[f64]) -> usize {
        match &self.cells {
            Cells::Grid { lower, upper, bins } => {
                let mut index = 0;
                for ((b, l), u) in behavior.iter().zip(lower).zip(upper) {
                    let t = ((b - l) / (u - l)).clamp(0.0, 1.0 - 1e-12);
                    index = index * bins + (t * *bins as f64) as usize;
                }
                index
            }
            Cells::Voronoi { centroids } => nearest(centroids, behavior),
        }
    }

    /// Offers a solution; returns true when it became its cell's elite (never for a NaN
    /// fitness).
    pub fn insert(&mut self, x: Vec<f64>, fitness: f64, behavior: Vec<f64>) -> bool {
        let cell = self.cell_of(&behavior);
        let better = !fitness.is_nan()
            && match &self.elites[cell] {
                None => true,
                Some(e) => fitness < e.fitness,
            };
        if better {
            self.elites[cell] = Some(Elite {
                x,
                fitness,
                behavior,
            });
        }
        better
    }

    /// `n` new candidates by iso+line variation of random elites (`None` while the
    /// archive is empty: seed it with [`MapElites::insert`] first).
    pub fn ask(&mut self, n: usize) -> Option<Vec<Vec<f64>>> {
        let occupied: Vec<usize> = (0..self.elites.len())
            .filter(|&i| self.elites[i].is_some())
            .collect();
        if occupied.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let a = occupied[self.rng.random_range(0..occupied.len())];
            let b = occupied[self.rng.random_range(0..occupied.len())];
            let (xa, xb) = match (&self.elites[a], &self.elites[b]) {
                (Some(ea), Some(eb)) => (ea.x.clone(), eb.x.clone()),
                _ => unreachable!("occupied cells hold elites"),
            };
            let line: f64 = StandardNormal.sample(&mut self.rng);
            out.push(
                xa.iter()
                    .zip(&xb)
                    .map(|(u, v)| {
                        let iso: f64 = StandardNormal.sample(&mut self.rng);
                        u + self.sigma_iso * iso + self.sigma_line * line * (v - u)
                    })
                    .collect(),
            );
        }
        Some(out)
    }

    /// All elites (occupied cells only).
    pub fn elites(&self) -> impl Iterator<Item = &Elite> {
        self.elites.iter().flatten()
    }

    /// Fraction of cells occupied.
    pub fn coverage(&self) -> f64 {
        self.elites().count() as f64 / self.elites.len() as f64
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.elites.len()
    }
}

fn nearest(centroids: &[Vec<f64>], p: &[f64]) -> usize {
    let mut best = (f64::INFINITY, 0);
    for (i, c) in centroids.iter().enumerate() {
        let d = dist2(c, p);
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Behaviour = first two coordinates; fitness = sphere of the rest.
    fn evaluate(x: &[f64]) -> (f64, Vec<f64>) {
        (
            x[2..].iter().map(|v| v * v).sum(),
            vec![x[0].clamp(-1.0, 1.0), x[1].clamp(-1.0, 1.0)],
        )
    }

    fn run(mut map: MapElites) -> MapElites {
        map.sigma_iso = 0.1;
        let mut rng = seeded_rng(1);
        for _ in 0..20 {
            let x: Vec<f64> = (0..5).map(|_| rng.random_range(-0.1..0.1)).collect();
            let (f, b) = evaluate(&x);
            map.insert(x, f, b);
        }
        for _ in 0..200 {
            for x in map.ask(20).unwrap() {
                let (f, b) = evaluate(&x);
                map.insert(x, f, b);
            }
        }
        map
    }

    #[test]
    fn grid_map_spreads_over_behaviour_space() {
        let map = run(MapElites::grid(vec![-1.0, -1.0], vec![1.0, 1.0], 5, 2));
        assert!(map.coverage() > 0.9, "coverage {}", map.coverage());
        let corner = map.cell_of(&[0.99, 0.99]);
        assert_eq!(corner, 24);
    }

    #[test]
    fn cvt_cells_partition_and_fill() {
        let map = run(MapElites::cvt(
            vec![-1.0, -1.0],
            vec![1.0, 1.0],
            16,
            2000,
            3,
        ));
        assert_eq!(map.cells(), 16);
        assert!(map.coverage() > 0.9, "coverage {}", map.coverage());
        let mean_fitness =
            map.elites().map(|e| e.fitness).sum::<f64>() / map.elites().count() as f64;
        assert!(
            mean_fitness < 0.05,
            "elites should also be good: {mean_fitness}"
        );
    }
}
