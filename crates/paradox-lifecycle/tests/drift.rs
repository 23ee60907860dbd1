//! Drift detection on synthetic Gaussians with a known answer.

use paradox_lifecycle::drift::{detect_drift, DriftConfig, MAX_DRIFT_SAMPLES};
use paradox_lifecycle::LifecycleError;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

const DIM: usize = 16;

/// `n` rows of `N(shift · 1, scale² I)` in `DIM` dimensions.
fn gaussian(n: usize, shift: f32, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * DIM)
        .map(|_| shift + scale * rng.sample::<f32, _>(StandardNormal))
        .collect()
}

fn config(seed: u64) -> DriftConfig {
    DriftConfig {
        seed,
        ..DriftConfig::default()
    }
}

#[test]
fn shifted_gaussian_is_flagged() {
    let reference = gaussian(300, 0.0, 1.0, 1);
    let recent = gaussian(300, 0.25, 1.0, 2);
    let report = detect_drift(&reference, &recent, DIM, &config(0)).unwrap();
    assert!(report.drifted, "{report:?}");
    assert!(report.mmd_p_value <= 0.05 && report.mmd > report.mmd_threshold);
    assert!(
        report.mean_shift > report.mean_shift_threshold,
        "{report:?}"
    );
    assert!(report.auc > report.auc_threshold, "{report:?}");
    // ‖0.25 · 1‖ in 16 dimensions is 1.0.
    assert!((report.mean_shift - 1.0).abs() < 0.2, "{report:?}");
    assert_eq!((report.reference, report.recent), (300, 300));
}

#[test]
fn identical_distribution_is_not_flagged() {
    let reference = gaussian(300, 0.0, 1.0, 3);
    let recent = gaussian(300, 0.0, 1.0, 4);
    let report = detect_drift(&reference, &recent, DIM, &config(0)).unwrap();
    assert!(!report.drifted, "{report:?}");
    assert!(report.mmd_p_value > 0.05);
    assert!(
        report.mean_shift < report.mean_shift_threshold,
        "{report:?}"
    );
    assert!((report.auc - 0.5).abs() < 0.1, "{report:?}");
}

#[test]
fn false_alarm_rate_is_near_alpha() {
    // 60 independent same-distribution pairs at alpha 0.05: ~3 alarms expected;
    // more than 9 has probability below 0.2%.
    let alarms = (0..60)
        .filter(|&t| {
            let reference = gaussian(100, 0.0, 1.0, 1000 + 2 * t);
            let recent = gaussian(100, 0.0, 1.0, 1001 + 2 * t);
            detect_drift(&reference, &recent, DIM, &config(t))
                .unwrap()
                .drifted
        })
        .count();
    assert!(alarms <= 9, "{alarms} false alarms in 60");
}

#[test]
fn a_change_of_spread_is_caught_by_mmd_not_by_the_mean() {
    let reference = gaussian(300, 0.0, 1.0, 5);
    let recent = gaussian(300, 0.0, 1.5, 6);
    let report = detect_drift(&reference, &recent, DIM, &config(1)).unwrap();
    assert!(report.drifted, "{report:?}");
    assert!(
        report.mean_shift < report.mean_shift_threshold,
        "{report:?}"
    );
}

#[test]
fn windows_are_subsampled_and_results_are_deterministic() {
    let reference = gaussian(2000, 0.0, 1.0, 7);
    let recent = gaussian(700, 0.1, 1.0, 8);
    let cfg = DriftConfig {
        max_samples: 500,
        ..config(9)
    };
    let a = detect_drift(&reference, &recent, DIM, &cfg).unwrap();
    let b = detect_drift(&reference, &recent, DIM, &cfg).unwrap();
    assert_eq!((a.reference, a.recent), (500, 500));
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

fn invalid(result: Result<impl std::fmt::Debug, LifecycleError>, needle: &str) {
    match result {
        Err(LifecycleError::InvalidArgument(message)) => {
            assert!(
                message.contains(needle),
                "`{message}` should mention `{needle}`"
            )
        }
        other => panic!("expected InvalidArgument mentioning `{needle}`, got {other:?}"),
    }
}

#[test]
fn bad_drift_input_is_rejected_with_a_reason() {
    let a = gaussian(50, 0.0, 1.0, 10);
    let b = gaussian(50, 0.0, 1.0, 11);
    let ok = DriftConfig::default();
    invalid(detect_drift(&a, &b, 0, &ok), "dimension must be at least 1");
    invalid(detect_drift(&a[..17], &b, DIM, &ok), "whole number");
    invalid(
        detect_drift(&a, &b[..5 * DIM], DIM, &ok),
        "recent window needs at least 10",
    );
    let mut nan = a.clone();
    nan[DIM * 2] = f32::NAN;
    invalid(detect_drift(&nan, &b, DIM, &ok), "row 2 column 0 is NaN");
    let mut inf = b.clone();
    inf[1] = f32::NEG_INFINITY;
    invalid(detect_drift(&a, &inf, DIM, &ok), "-inf");
    let with = |f: &dyn Fn(&mut DriftConfig)| {
        let mut c = DriftConfig::default();
        f(&mut c);
        c
    };
    invalid(
        detect_drift(&a, &b, DIM, &with(&|c| c.alpha = 0.0)),
        "alpha",
    );
    invalid(
        detect_drift(&a, &b, DIM, &with(&|c| c.alpha = 1.0)),
        "alpha",
    );
    invalid(
        detect_drift(&a, &b, DIM, &with(&|c| c.alpha = f32::NAN)),
        "alpha",
    );
    invalid(
        detect_drift(&a, &b, DIM, &with(&|c| c.permutations = 0)),
        "permutations",
    );
    invalid(
        detect_drift(&a, &b, DIM, &with(&|c| c.permutations = 10)),
        "at least 19",
    );
    invalid(
        detect_drift(&a, &b, DIM, &with(&|c| c.max_samples = 5)),
        "max_samples",
    );
    invalid(
        detect_drift(
            &a,
            &b,
            DIM,
            &with(&|c| c.max_samples = MAX_DRIFT_SAMPLES + 1),
        ),
        "max_samples",
    );
}
