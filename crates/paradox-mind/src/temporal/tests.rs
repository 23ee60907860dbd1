use super::*;
use paradox_engine::{CollectionConfig, Engine, NewPoint};

fn linear_path() -> Trajectory {
    // x(t) = (1 + 2t, −t, 0.5) with t in seconds, sampled every 500 ms.
    Trajectory::new(
        (0..8)
            .map(|i| {
                let s = i as f32 * 0.5;
                (i * 500, vec![1.0 + 2.0 * s, -s, 0.5])
            })
            .collect(),
    )
    .unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[test]
fn every_predictor_extends_a_linear_path() {
    let traj = linear_path();
    let expected = [1.0 + 2.0 * 5.0, -5.0, 0.5];
    for method in [
        Prediction::Linear,
        Prediction::Average { window: None },
        Prediction::Average { window: Some(2) },
        Prediction::Kalman {
            process_noise: 1e-4,
            measurement_noise: 1e-4,
        },
        Prediction::Autoregressive { order: 2 },
    ] {
        let got = traj.predict(5000, &method).unwrap();
        assert!(close(&got, &expected, 0.02), "{method:?}: {got:?}");
    }
}

#[test]
fn velocity_speed_and_curvature() {
    let traj = linear_path();
    for (_, v) in traj.velocities() {
        assert!(close(&v, &[2.0, -1.0, 0.0], 1e-4));
    }
    for s in traj.speeds() {
        assert!((s - 5f32.sqrt()).abs() < 1e-4);
    }
    assert!(traj.curvature().iter().all(|k| k.abs() < 1e-3));
    // A circle of radius 2, finely sampled: curvature ≈ 1/2.
    let circle = Trajectory::new(
        (0..100)
            .map(|i| {
                let a = i as f32 * 0.05;
                (i as i64 * 10, vec![2.0 * a.cos(), 2.0 * a.sin()])
            })
            .collect(),
    )
    .unwrap();
    for k in circle.curvature() {
        assert!((k - 0.5).abs() < 0.01, "curvature {k}");
    }
}

#[test]
fn kalman_smooths_noise_better_than_linear() {
    let mut state = 3u64;
    let mut noise = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    };
    let samples = (0..40)
        .map(|i| (i * 1000, vec![i as f32 + noise()]))
        .collect();
    let traj = Trajectory::new(samples).unwrap();
    let truth = 45.0;
    let linear = traj.predict(45_000, &Prediction::Linear).unwrap()[0];
    let kalman = traj
        .predict(
            45_000,
            &Prediction::Kalman {
                process_noise: 1e-4,
                measurement_noise: 0.01,
            },
        )
        .unwrap()[0];
    assert!((kalman - truth).abs() < 0.3, "kalman {kalman}");
    assert!(
        (kalman - truth).abs() < (linear - truth).abs(),
        "kalman {kalman} linear {linear}"
    );
}

#[test]
fn as_of_lookups_and_search() {
    let traj = linear_path();
    assert_eq!(traj.at(-1), None);
    assert_eq!(traj.at(700), Some(&[2.0, -0.5, 0.5][..]));
    assert!(close(&traj.interpolate(250), &[1.5, -0.25, 0.5], 1e-6));
    let mut set = TrajectorySet::new();
    set.record(PointId::Num(1), 0, vec![0.0, 0.0]).unwrap();
    set.record(PointId::Num(1), 100, vec![10.0, 0.0]).unwrap();
    set.record(PointId::Num(2), 50, vec![5.0, 0.0]).unwrap();
    let q = [9.0, 0.0];
    assert_eq!(
        set.search_as_of(&q, 200, 1, Metric::L2)[0].id,
        PointId::Num(1)
    );
    assert_eq!(
        set.search_as_of(&q, 60, 1, Metric::L2)[0].id,
        PointId::Num(2)
    );
    assert_eq!(set.search_as_of(&q, 10, 5, Metric::L2).len(), 1);
}

#[test]
fn a_trajectory_is_read_from_the_engine_history() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let col = engine
        .create_collection(CollectionConfig {
            history: true,
            ..CollectionConfig::new("c", 2, Metric::L2)
        })
        .unwrap();
    for step in 0..4 {
        col.upsert(vec![NewPoint::new(1u64, vec![step as f32, 0.0])])
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    let trajectory = Trajectory::of(&col, &PointId::Num(1)).unwrap();
    assert_eq!(trajectory.len(), 4);
    assert_eq!(trajectory.vectors()[3], vec![3.0, 0.0]);
    assert!(trajectory.times().windows(2).all(|w| w[0] < w[1]));
    assert!(trajectory.speeds().iter().all(|&s| s > 0.0));
    assert!(matches!(
        Trajectory::of(&col, &PointId::Num(9)),
        Err(MindError::PointNotFound { .. })
    ));

    let plain = engine
        .create_collection(CollectionConfig::new("p", 2, Metric::L2))
        .unwrap();
    let error = Trajectory::of(&plain, &PointId::Num(1)).unwrap_err();
    assert!(error.to_string().contains("history"), "{error}");
}
