//! Standard test functions (minimum 0), used by the tests and the benchmarks.

/// `Σ xᵢ²`.
pub fn sphere(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

/// `Σ 10^(6·i/(n−1)) xᵢ²`: condition number 1e6.
pub fn ellipsoid(x: &[f64]) -> f64 {
    let n = x.len();
    if n == 1 {
        return x[0] * x[0];
    }
    x.iter()
        .enumerate()
        .map(|(i, v)| 10f64.powf(6.0 * i as f64 / (n - 1) as f64) * v * v)
        .sum()
}

/// `Σ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²`; minimum at all ones.
pub fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

/// `10 n + Σ xᵢ² − 10 cos(2π xᵢ)`: highly multimodal.
pub fn rastrigin(x: &[f64]) -> f64 {
    10.0 * x.len() as f64
        + x.iter()
            .map(|v| v * v - 10.0 * (2.0 * std::f64::consts::PI * v).cos())
            .sum::<f64>()
}

/// A test function by name (`sphere`, `ellipsoid`, `rosenbrock`, `rastrigin`).
pub fn by_name(name: &str) -> Option<fn(&[f64]) -> f64> {
    match name {
        "sphere" => Some(sphere),
        "ellipsoid" => Some(ellipsoid),
        "rosenbrock" => Some(rosenbrock),
        "rastrigin" => Some(rastrigin),
        _ => None,
    }
}
