//! Adaptive operator selection: a multi-armed bandit over variation operators.
//!
//! UCB1 on a sliding average of rewards: arm `a` is chosen to maximise
//! `mean_a + c·√(2 ln N / n_a)`, every arm being tried once first. Rewards are
//! expected in `[0, 1]` (e.g. 1 when the offspring beats its better parent). The
//! average forgets with factor `decay` per update so the bandit follows a search whose
//! best operator changes over time.

use rand::rngs::StdRng;
use rand::Rng;

/// UCB1 bandit with forgetting.
#[derive(Debug, Clone)]
pub struct OperatorBandit {
    counts: Vec<f64>,
    values: Vec<f64>,
    /// Exploration weight `c`.
    pub exploration: f64,
    /// Weight kept by old rewards at each update of an arm (1: plain average).
    pub decay: f64,
}

impl OperatorBandit {
    /// A bandit over `arms` operators.
    pub fn new(arms: usize, exploration: f64, decay: f64) -> Self {
        assert!(arms > 0, "a bandit needs at least one arm");
        OperatorBandit {
            counts: vec![0.0; arms],
            values: vec![0.0; arms],
            exploration,
            decay,
        }
    }

    /// Number of arms.
    pub fn arms(&self) -> usize {
        self.counts.len()
    }

    /// The arm to pull (ties broken at random).
    pub fn select(&self, rng: &mut StdRng) -> usize {
        if let Some(untried) = self.counts.iter().position(|c| *c == 0.0) {
            return untried;
        }
        let total: f64 = self.counts.iter().sum();
        let mut best = (f64::NEG_INFINITY, 0);
        for a in 0..self.arms() {
            let jitter = rng.random::<f64>() * 1e-9;
            let ucb = self.values[a]
                + self.exploration * (2.0 * total.ln() / self.counts[a]).sqrt()
                + jitter;
            if ucb > best.0 {
                best = (ucb, a);
            }
        }
        best.1
    }

    /// Records `reward` for `arm`.
    pub fn update(&mut self, arm: usize, reward: f64) {
        self.counts[arm] = self.counts[arm] * self.decay + 1.0;
        self.values[arm] += (reward - self.values[arm]) / self.counts[arm];
    }

    /// Mean reward per arm.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// (Discounted) pulls per arm.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bandit_finds_the_best_arm() {
        let mut bandit = OperatorBandit::new(3, 0.5, 1.0);
        let mut rng = crate::evolution::seeded_rng(4);
        let p = [0.2, 0.7, 0.4];
        let mut pulls = [0usize; 3];
        for _ in 0..2000 {
            let arm = bandit.select(&mut rng);
            pulls[arm] += 1;
            let reward = if rng.random::<f64>() < p[arm] {
                1.0
            } else {
                0.0
            };
            bandit.update(arm, reward);
        }
        assert!(pulls[1] > 1200, "pulls {pulls:?}");
        assert!((bandit.values()[1] - 0.7).abs() < 0.05);
    }
}
