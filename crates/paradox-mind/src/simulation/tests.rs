use super::*;
use paradox_engine::{CollectionConfig, Engine, Metric, NewPoint, PointId};

fn grid(rows: usize, dim: usize) -> VectorBuffer {
    VectorBuffer::from_flat(dim, (0..rows * dim).map(|i| (i % 7) as f32 - 3.0).collect()).unwrap()
}

#[test]
fn decay_matches_the_closed_form() {
    let mut sim = Simulation::new(grid(1000, 8), vec![Dynamics::Decay { rate: 0.1 }], 0.5).unwrap();
    let before = sim.buffer.data().to_vec();
    let stop = AtomicBool::new(false);
    let report = sim.run(10, &stop, &mut |_| {});
    assert_eq!(
        report,
        RunReport {
            steps: 10,
            stopped: false
        }
    );
    let k = 0.95f32.powi(10);
    for (a, b) in sim.buffer.data().iter().zip(&before) {
        assert!((a - b * k).abs() < 1e-5);
    }
}

#[test]
fn gravity_and_attraction_pull_toward_their_centres() {
    let center = vec![1.0; 4];
    let mut sim = Simulation::new(
        grid(500, 4),
        vec![
            Dynamics::GravityWell {
                center: center.clone(),
                strength: 0.5,
                softening: 0.1,
            },
            Dynamics::Attraction {
                centroids: vec![center.clone()],
                rate: 0.2,
            },
        ],
        0.1,
    )
    .unwrap();
    let dist = |b: &VectorBuffer| {
        (0..b.rows())
            .map(|i| paradox_kernels::l2_squared(b.row(i), &center))
            .sum::<f32>()
    };
    let before = dist(&sim.buffer);
    sim.run(20, &AtomicBool::new(false), &mut |_| {});
    assert!(dist(&sim.buffer) < 0.5 * before);
}

#[test]
fn repulsion_pushes_out_and_noise_is_deterministic() {
    let mut sim = Simulation::new(
        VectorBuffer::from_flat(2, vec![0.1, 0.0]).unwrap(),
        vec![Dynamics::Repulsion {
            sources: vec![vec![0.0, 0.0]],
            strength: 1.0,
            radius: 1.0,
        }],
        0.1,
    )
    .unwrap();
    sim.step();
    assert!(sim.buffer.row(0)[0] > 0.1);
    let noisy = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut s = Simulation::new(
                grid(2000, 4),
                vec![Dynamics::Noise {
                    sigma: 1.0,
                    seed: 5,
                }],
                1.0,
            )
            .unwrap();
            s.run(3, &AtomicBool::new(false), &mut |_| {});
            s.buffer.data().to_vec()
        })
    };
    assert_eq!(noisy(1), noisy(2));
}

#[test]
fn flocking_contracts_and_custom_dynamics_run() {
    let mut sim = Simulation::new(
        grid(300, 3),
        vec![
            Dynamics::Flocking {
                cohesion: 1.0,
                alignment: 0.5,
                separation: 0.0,
                separation_radius: 0.0,
            },
            Dynamics::Custom(Box::new(|x, ctx| x[0] += ctx.dt)),
        ],
        0.05,
    )
    .unwrap();
    let spread = |b: &VectorBuffer| (0..b.rows()).map(|i| b.row(i)[1].abs()).sum::<f32>();
    let before = spread(&sim.buffer);
    sim.run(40, &AtomicBool::new(false), &mut |_| {});
    assert!(spread(&sim.buffer) < before);
}

#[test]
fn stop_flag_and_progress() {
    let mut sim = Simulation::new(grid(10, 2), vec![Dynamics::Decay { rate: 0.1 }], 1.0).unwrap();
    let stop = AtomicBool::new(false);
    let mut seen = Vec::new();
    let report = sim.run(100, &stop, &mut |p| {
        seen.push(p.step);
        if p.step == 3 {
            stop.store(true, Ordering::Relaxed);
        }
    });
    assert_eq!(
        report,
        RunReport {
            steps: 3,
            stopped: true
        }
    );
    assert_eq!(seen, vec![1, 2, 3]);
}

#[test]
fn collection_round_trip_keeps_payloads_and_honours_filters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let col = engine
        .create_collection(CollectionConfig::new("sim", 2, Metric::L2))
        .unwrap();
    let points = (0..20u64)
        .map(|i| {
            let payload = serde_json::json!({"group": i % 2})
                .as_object()
                .unwrap()
                .clone();
            NewPoint::new(i, vec![i as f32, 1.0]).with_payload(payload)
        })
        .collect();
    col.upsert(points).unwrap();
    let filter = paradox_engine::Filter::eq("group", 1);
    let buffer = VectorBuffer::from_collection(&col, Some(filter)).unwrap();
    assert_eq!(buffer.rows(), 10);
    let mut sim = Simulation::new(buffer, vec![Dynamics::Decay { rate: 1.0 }], 0.5).unwrap();
    sim.step();
    assert_eq!(sim.buffer.write_back(&col).unwrap(), 10);
    let p = col.get(&[PointId::Num(3), PointId::Num(4)]).unwrap();
    let odd = p[0].as_ref().unwrap();
    assert_eq!(odd.vector, vec![1.5, 0.5]);
    assert_eq!(odd.payload["group"], 1);
    assert_eq!(
        p[1].as_ref().unwrap().vector,
        vec![4.0, 1.0],
        "filtered-out points are untouched"
    );
}

#[test]
fn an_expression_dynamic_steps_like_its_built_in_twin() {
    // `x * (1 - rate·dt)` is exactly `Decay`.
    let expr = Expression::compile("x * (1 - rate * dt)", 8, &[("rate", 0.1)], &[]).unwrap();
    let mut a = Simulation::new(grid(600, 8), vec![Dynamics::Decay { rate: 0.1 }], 0.5).unwrap();
    let mut b = Simulation::new(grid(600, 8), vec![Dynamics::Expression(expr)], 0.5).unwrap();
    for _ in 0..3 {
        a.step();
        b.step();
    }
    for (x, y) in a.buffer.data().iter().zip(b.buffer.data()) {
        assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{x} vs {y}");
    }
    // Attraction toward a bound vector.
    let c = vec![1.0f32; 8];
    let pull = Expression::compile("x + dt * (c - x)", 8, &[], &[("c", c.clone())]).unwrap();
    let mut s = Simulation::new(grid(10, 8), vec![Dynamics::Expression(pull)], 0.5).unwrap();
    let before = paradox_kernels::l2_squared(&s.buffer.data()[..8], &c);
    s.step();
    let after = paradox_kernels::l2_squared(&s.buffer.data()[..8], &c);
    assert!((after - before * 0.25).abs() < 1e-4, "{before} -> {after}");
}

#[test]
fn dynamics_of_the_wrong_dimension_or_a_bad_time_step_are_refused() {
    let expr = Expression::compile("x", 3, &[], &[]).unwrap();
    let error = Simulation::new(grid(10, 8), vec![Dynamics::Expression(expr)], 0.5).unwrap_err();
    assert!(error.to_string().contains("dimension"), "{error}");
    let well = Dynamics::GravityWell {
        center: vec![0.0; 2],
        strength: 1.0,
        softening: 0.1,
    };
    assert!(Simulation::new(grid(10, 8), vec![well], 0.5).is_err());
    let error = Simulation::new(grid(10, 8), Vec::new(), f32::NAN).unwrap_err();
    assert!(error.to_string().contains("dt"), "{error}");
}
