//! The built-in dynamics and how one chunk of rows is stepped.

pub use super::expr::Expression;
use super::expr::Scratch;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// What a custom dynamic sees besides its row.
#[derive(Debug, Clone, Copy)]
pub struct RowContext {
    /// Row index in the buffer.
    pub row: usize,
    /// Step number (from 0).
    pub step: u64,
    /// Time step.
    pub dt: f32,
}

/// A user dynamic: transforms one row in place.
pub type RowFn = Box<dyn Fn(&mut [f32], RowContext) + Send + Sync>;

/// A force or transformation applied to each vector every step.
pub enum Dynamics {
    /// Pull toward `center`: `x += dt·strength·(c − x)/(‖c − x‖² + softening²)^{3/2}`,
    /// capped so a step never overshoots the centre.
    GravityWell {
        /// The attractor.
        center: Vec<f32>,
        /// Gravitational strength.
        strength: f32,
        /// Softening length (avoids the singularity at the centre).
        softening: f32,
    },
    /// Move a fraction `rate·dt` of the way to the nearest of `centroids`.
    Attraction {
        /// Attractors (e.g. k-means centroids of the collection).
        centroids: Vec<Vec<f32>>,
        /// Fraction per unit time.
        rate: f32,
    },
    /// Push away from each of `sources` closer than `radius`, with a force falling
    /// linearly to zero at `radius`.
    Repulsion {
        /// Repelling points.
        sources: Vec<Vec<f32>>,
        /// Force at zero distance.
        strength: f32,
        /// Range.
        radius: f32,
    },
    /// Shrink toward the origin: `x *= 1 − rate·dt`.
    Decay {
        /// Fraction per unit time.
        rate: f32,
    },
    /// Brownian motion: `x += sigma·√dt·N(0, I)`, deterministic per (seed, step, row).
    Noise {
        /// Standard deviation per unit time.
        sigma: f32,
        /// Seed.
        seed: u64,
    },
    /// Boids over the whole set: velocity steered toward the global centroid
    /// (cohesion) and the mean velocity (alignment), damped, then `x += v·dt`.
    /// Separation from the global centroid below `separation_radius` keeps the
    /// flock from collapsing. (Global, not k-nearest, neighbourhoods: one extra read
    /// pass per step instead of a neighbour search.)
    Flocking {
        /// Pull toward the centroid.
        cohesion: f32,
        /// Pull toward the mean velocity.
        alignment: f32,
        /// Push away when closer than `separation_radius` to the centroid.
        separation: f32,
        /// Radius of the separation push.
        separation_radius: f32,
    },
    /// A user dynamic: transforms one row in place.
    Custom(RowFn),
    /// A user dynamic written as an expression, compiled once (see [`Expression`]).
    Expression(Expression),
}

impl std::fmt::Debug for Dynamics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Dynamics::GravityWell { .. } => "GravityWell",
            Dynamics::Attraction { .. } => "Attraction",
            Dynamics::Repulsion { .. } => "Repulsion",
            Dynamics::Decay { .. } => "Decay",
            Dynamics::Noise { .. } => "Noise",
            Dynamics::Flocking { .. } => "Flocking",
            Dynamics::Custom(_) => "Custom",
            Dynamics::Expression(_) => "Expression",
        };
        f.write_str(name)
    }
}

/// Statistics over all rows that some dynamics need, computed before the step.
#[derive(Debug, Default)]
pub(super) struct Globals {
    centroid: Vec<f32>,
    mean_velocity: Vec<f32>,
}

impl Globals {
    pub(super) fn compute(
        dynamics: &[Dynamics],
        data: &[f32],
        velocities: &[f32],
        dim: usize,
    ) -> Globals {
        use rayon::prelude::*;
        if !dynamics
            .iter()
            .any(|d| matches!(d, Dynamics::Flocking { .. }))
            || data.is_empty()
        {
            return Globals::default();
        }
        let rows = (data.len() / dim) as f32;
        let sum = |buf: &[f32]| -> Vec<f32> {
            buf.par_chunks(dim * 1024)
                .map(|chunk| {
                    let mut acc = vec![0.0f64; dim];
                    for row in chunk.chunks_exact(dim) {
                        for (a, x) in acc.iter_mut().zip(row) {
                            *a += *x as f64;
                        }
                    }
                    acc
                })
                .reduce(
                    || vec![0.0f64; dim],
                    |mut a, b| {
                        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                        a
                    },
                )
                .into_iter()
                .map(|v| (v / rows as f64) as f32)
                .collect()
        };
        Globals {
            centroid: sum(data),
            mean_velocity: sum(velocities),
        }
    }
}

pub(super) struct StepContext<'a> {
    pub dt: f32,
    pub step: u64,
    pub dim: usize,
    pub globals: &'a Globals,
}

fn seed_for(seed: u64, step: u64, row: usize) -> u64 {
    // SplitMix64 finaliser over the three inputs: independent streams per row and step.
    let mut z = seed
        ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (row as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Steps `rows` (whole rows, the first being `first_row`) through every dynamic.
pub(super) fn apply_chunk(
    dynamics: &[Dynamics],
    ctx: &StepContext<'_>,
    first_row: usize,
    rows: &mut [f32],
    mut velocities: Option<&mut [f32]>,
) {
    let dim = ctx.dim;
    let dt = ctx.dt;
    let mut scratch = Scratch::default();
    for (r, x) in rows.chunks_exact_mut(dim).enumerate() {
        let row = first_row + r;
        for dynamic in dynamics {
            match dynamic {
                Dynamics::Decay { rate } => {
                    let k = 1.0 - rate * dt;
                    x.iter_mut().for_each(|v| *v *= k);
                }
                Dynamics::GravityWell {
                    center,
                    strength,
                    softening,
                } => {
                    // The SIMD kernel: a scalar f32 sum would not vectorise (strict
                    // float order) and made this step compute-bound.
                    let d2 = paradox_kernels::l2_squared(x, center);
                    let r2 = d2 + softening * softening;
                    let k = (dt * strength / (r2 * r2.sqrt())).min(1.0);
                    x.iter_mut()
                        .zip(center)
                        .for_each(|(a, c)| *a += k * (c - *a));
                }
                Dynamics::Attraction { centroids, rate } => {
                    let mut best = (f32::INFINITY, 0);
                    for (i, c) in centroids.iter().enumerate() {
                        let d = paradox_kernels::l2_squared(x, c);
                        if d < best.0 {
                            best = (d, i);
                        }
                    }
                    if let Some(c) = centroids.get(best.1) {
                        let k = (rate * dt).min(1.0);
                        x.iter_mut().zip(c).for_each(|(a, c)| *a += k * (c - *a));
                    }
                }
                Dynamics::Repulsion {
                    sources,
                    strength,
                    radius,
                } => {
                    for s in sources {
                        let d = paradox_kernels::l2_squared(x, s).sqrt();
                        if d < *radius && d > 0.0 {
                            let k = dt * strength * (1.0 - d / radius) / d;
                            x.iter_mut().zip(s).for_each(|(a, s)| *a += k * (*a - s));
                        }
                    }
                }
                Dynamics::Noise { sigma, seed } => {
                    let mut rng = SmallRng::seed_from_u64(seed_for(*seed, ctx.step, row));
                    let scale = sigma * dt.sqrt();
                    x.iter_mut().for_each(|v| {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        *v += scale * z;
                    });
                }
                Dynamics::Flocking {
                    cohesion,
                    alignment,
                    separation,
                    separation_radius,
                } => {
                    let Some(vel) = velocities.as_deref_mut() else {
                        continue;
                    };
                    let v = &mut vel[r * dim..(r + 1) * dim];
                    let g = ctx.globals;
                    let d = paradox_kernels::l2_squared(x, &g.centroid).sqrt();
                    let push = if d < *separation_radius && d > 0.0 {
                        separation * (1.0 - d / separation_radius) / d
                    } else {
                        0.0
                    };
                    for i in 0..dim {
                        let to_center = g.centroid[i] - x[i];
                        v[i] += dt
                            * (cohesion * to_center + alignment * (g.mean_velocity[i] - v[i])
                                - push * to_center);
                        v[i] *= 0.99;
                        x[i] += dt * v[i];
                    }
                }
                Dynamics::Custom(f) => f(
                    x,
                    RowContext {
                        row,
                        step: ctx.step,
                        dt,
                    },
                ),
                Dynamics::Expression(e) => e.apply(x, row, ctx.step, dt, &mut scratch),
            }
        }
    }
}
