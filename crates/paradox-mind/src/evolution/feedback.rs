//! Human feedback: people rate or pick candidates, and the ratings bias what the
//! optimiser proposes next and how it scores.
//!
//! Ratings are in `[-1, 1]`. The preference of a point is the kernel-weighted mean
//! rating of rated points near it (Gaussian kernel of width `bandwidth`); it can be
//! subtracted from the fitness ([`Feedback::adjust`]) or used to pull candidates
//! toward liked and away from disliked ones ([`Feedback::bias`]).

/// Collected ratings.
#[derive(Debug, Clone)]
pub struct Feedback {
    ratings: Vec<(Vec<f64>, f64)>,
    /// Kernel width (distance at which a rating's influence falls to e^{-1/2}).
    pub bandwidth: f64,
}

impl Feedback {
    /// No ratings yet.
    pub fn new(bandwidth: f64) -> Self {
        Feedback {
            ratings: Vec::new(),
            bandwidth,
        }
    }

    /// Rates `x` (clamped to `[-1, 1]`).
    pub fn rate(&mut self, x: &[f64], rating: f64) {
        self.ratings.push((x.to_vec(), rating.clamp(-1.0, 1.0)));
    }

    /// The person picked `chosen` over `rejected`: +1 and −1 ratings.
    pub fn pick(&mut self, chosen: &[f64], rejected: &[Vec<f64>]) {
        self.rate(chosen, 1.0);
        for r in rejected {
            self.rate(r, -1.0);
        }
    }

    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.ratings.len()
    }

    /// True when nothing was rated.
    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }

    /// Kernel-weighted mean rating around `x`, shrunk toward 0 where the ratings'
    /// total kernel weight is small (0 far from every rating).
    pub fn preference(&self, x: &[f64]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (p, r) in &self.ratings {
            let w = (-super::dist2(p, x) / (2.0 * self.bandwidth * self.bandwidth)).exp();
            num += w * r;
            den += w;
        }
        // The 0.1 prior of "no opinion" fades the preference far from any rating.
        num / (den + 0.1)
    }

    /// Fitness corrected by preference (minimisation): `f − weight · preference(x)`.
    pub fn adjust(&self, fitness: f64, x: &[f64], weight: f64) -> f64 {
        fitness - weight * self.preference(x)
    }

    /// `x` moved by `strength` toward the rating-weighted centroid of liked points and
    /// away from disliked ones (unchanged without ratings).
    pub fn bias(&self, x: &[f64], strength: f64) -> Vec<f64> {
        let mut pull = vec![0.0; x.len()];
        let mut total = 0.0;
        for (p, r) in &self.ratings {
            for (acc, (pi, xi)) in pull.iter_mut().zip(p.iter().zip(x)) {
                *acc += r * (pi - xi);
            }
            total += r.abs();
        }
        if total == 0.0 {
            return x.to_vec();
        }
        x.iter()
            .zip(&pull)
            .map(|(xi, d)| xi + strength * d / total)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liked_regions_score_better_and_attract() {
        let mut fb = Feedback::new(0.5);
        fb.pick(&[1.0, 0.0], &[vec![-1.0, 0.0]]);
        assert!(fb.preference(&[0.9, 0.0]) > 0.5);
        assert!(fb.preference(&[-0.9, 0.0]) < -0.5);
        assert!(fb.adjust(1.0, &[1.0, 0.0], 1.0) < fb.adjust(1.0, &[-1.0, 0.0], 1.0));
        let moved = fb.bias(&[0.0, 1.0], 0.5);
        assert!(moved[0] > 0.0, "{moved:?}");
    }
}
