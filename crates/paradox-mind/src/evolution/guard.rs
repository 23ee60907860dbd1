//! A safety guard on candidates: norm bounds, a box, and forbidden regions (balls).
//! Optimisers call [`SafetyGuard::repair`] on every candidate before it is evaluated,
//! so nothing outside the allowed set is ever proposed to the objective.

/// A region no candidate may enter.
#[derive(Debug, Clone, PartialEq)]
pub struct ForbiddenBall {
    /// Centre.
    pub center: Vec<f64>,
    /// Radius.
    pub radius: f64,
}

/// Constraints on candidates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafetyGuard {
    /// Smallest allowed Euclidean norm.
    pub min_norm: Option<f64>,
    /// Largest allowed Euclidean norm.
    pub max_norm: Option<f64>,
    /// Per-coordinate lower and upper bounds.
    pub bounds: Option<(Vec<f64>, Vec<f64>)>,
    /// Regions to stay out of.
    pub forbidden: Vec<ForbiddenBall>,
}

fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

impl SafetyGuard {
    /// True when `x` satisfies every constraint.
    pub fn is_allowed(&self, x: &[f64]) -> bool {
        let n = norm(x);
        self.min_norm.is_none_or(|m| n >= m - 1e-12)
            && self.max_norm.is_none_or(|m| n <= m + 1e-12)
            && self.bounds.as_ref().is_none_or(|(lo, hi)| {
                x.iter()
                    .zip(lo)
                    .zip(hi)
                    .all(|((v, l), h)| *v >= *l && *v <= *h)
            })
            && self
                .forbidden
                .iter()
                .all(|b| super::dist2(x, &b.center).sqrt() >= b.radius - 1e-12)
    }

    /// Moves `x` into the allowed set: out of forbidden balls (radially, to the
    /// surface), into the norm shell (rescaling), into the box (clamping); repeated a
    /// few rounds since one fix can break another. Returns whether `x` is allowed now.
    pub fn repair(&self, x: &mut [f64]) -> bool {
        for _ in 0..8 {
            if self.is_allowed(x) {
                return true;
            }
            for ball in &self.forbidden {
                let d = super::dist2(x, &ball.center).sqrt();
                if d < ball.radius {
                    let scale = if d > 0.0 {
                        ball.radius * (1.0 + 1e-9) / d
                    } else {
                        0.0
                    };
                    for (i, v) in x.iter_mut().enumerate() {
                        let offset = if d > 0.0 {
                            (*v - ball.center[i]) * scale
                        } else if i == 0 {
                            ball.radius * (1.0 + 1e-9)
                        } else {
                            0.0
                        };
                        *v = ball.center[i] + offset;
                    }
                }
            }
            let n = norm(x);
            if let Some(max) = self.max_norm {
                if n > max {
                    x.iter_mut().for_each(|v| *v *= max / n);
                }
            }
            if let Some(min) = self.min_norm {
                if n < min && n > 0.0 {
                    x.iter_mut().for_each(|v| *v *= min / n);
                }
            }
            if let Some((lo, hi)) = &self.bounds {
                for ((v, l), h) in x.iter_mut().zip(lo).zip(hi) {
                    *v = v.clamp(*l, *h);
                }
            }
        }
        self.is_allowed(x)
    }

    /// Repairs every candidate; returns how many are still not allowed.
    pub fn repair_all(&self, candidates: &mut [Vec<f64>]) -> usize {
        let mut failed = 0;
        for x in candidates.iter_mut() {
            if !self.repair(x) {
                failed += 1;
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_leaves_balls_and_respects_norms() {
        let guard = SafetyGuard {
            max_norm: Some(2.0),
            forbidden: vec![ForbiddenBall {
                center: vec![1.0, 0.0],
                radius: 0.5,
            }],
            ..Default::default()
        };
        let mut x = vec![1.1, 0.0];
        assert!(!guard.is_allowed(&x));
        assert!(guard.repair(&mut x));
        assert!((x[0] - 1.5).abs() < 1e-6);
        let mut far = vec![3.0, 4.0];
        assert!(guard.repair(&mut far));
        assert!((norm(&far) - 2.0).abs() < 1e-9);
    }
}
