use super::*;
use paradox_engine::{CollectionConfig, Engine, NewPoint};
use std::sync::Arc;

/// A cosine collection over the axes of R⁴ plus a few combinations.
fn words() -> (tempfile::TempDir, Arc<Collection>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let col = engine
        .create_collection(CollectionConfig::new("words", 4, Metric::Cosine))
        .unwrap();
    // Axes: 0 = royalty, 1 = male, 2 = female, 3 = noise.
    let points = vec![
        NewPoint::new("man", vec![0.0, 1.0, 0.0, 0.1]),
        NewPoint::new("woman", vec![0.0, 0.0, 1.0, 0.1]),
        NewPoint::new("king", vec![1.0, 1.0, 0.0, 0.1]),
        NewPoint::new("queen", vec![1.0, 0.0, 1.0, 0.1]),
        NewPoint::new("apple", vec![0.0, 0.1, 0.1, 1.0]),
    ];
    col.upsert(points).unwrap();
    (dir, col)
}

fn id(s: &str) -> Concept {
    Concept::Id(PointId::from(s))
}

#[test]
fn analogy_man_king_woman_gives_queen() {
    let (_dir, col) = words();
    let hits = analogy(&col, &id("man"), &id("king"), &id("woman"), 1).unwrap();
    assert_eq!(hits[0].id, PointId::from("queen"));
    let hits = analogy_3cosmul(&col, &id("man"), &id("king"), &id("woman"), 1, 100).unwrap();
    assert_eq!(hits[0].id, PointId::from("queen"));
}

#[test]
fn arithmetic_is_normalised_and_mixes_ids_and_vectors() {
    let (_dir, col) = words();
    let v = arithmetic(
        &col,
        &[
            (1.0, id("king")),
            (-1.0, id("man")),
            (1.0, Concept::Vector(vec![0.0, 0.0, 1.0, 0.0])),
        ],
    )
    .unwrap();
    assert!((dot(&v, &v) - 1.0).abs() < 1e-5);
    // Stored vectors are normalised (cosine), so `male` cancels only roughly.
    assert!(v[0] > 0.3 && v[2] > 0.5 && v[1].abs() < v[0], "{v:?}");
    let missing = arithmetic(&col, &[(1.0, id("nobody"))]);
    assert!(matches!(missing, Err(MindError::PointNotFound { .. })));
}

#[test]
fn slerp_hits_endpoints_and_stays_on_the_sphere() {
    let a = [1.0, 0.0, 0.0];
    let b = [0.0, 1.0, 0.0];
    let start = slerp(&a, &b, 0.0);
    let end = slerp(&a, &b, 1.0);
    for i in 0..3 {
        assert!((start[i] - a[i]).abs() < 1e-6 && (end[i] - b[i]).abs() < 1e-6);
    }
    let mid = slerp(&a, &b, 0.5);
    assert!(
        (dot(&mid, &mid) - 1.0).abs() < 1e-5,
        "slerp leaves the sphere"
    );
    assert!((mid[0] - mid[1]).abs() < 1e-6);
    assert_eq!(lerp(&a, &b, 0.25), vec![0.75, 0.25, 0.0]);
}

#[test]
fn weighted_centroid_weights_and_rejects_zero_total() {
    let c = weighted_centroid(&[(&[0.0, 0.0][..], 1.0), (&[4.0, 8.0][..], 3.0)]).unwrap();
    assert_eq!(c, vec![3.0, 6.0]);
    assert!(weighted_centroid(&[(&[1.0][..], 0.0)]).is_err());
}

#[test]
fn attention_weights_change_the_winner_under_l2() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let col = engine
        .create_collection(CollectionConfig::new("l2", 2, Metric::L2))
        .unwrap();
    col.upsert(vec![
        NewPoint::new(1u64, vec![1.0, 0.0]),
        NewPoint::new(2u64, vec![0.0, 1.5]),
    ])
    .unwrap();
    let q = [0.0, 0.0];
    let plain = attention_search(&col, &q, &[1.0, 1.0], 1, 10, None).unwrap();
    assert_eq!(plain[0].id, PointId::Num(1));
    // Dimension 0 ten times as important: point 1 is now far.
    let weighted = attention_search(&col, &q, &[10.0, 1.0], 1, 10, None).unwrap();
    assert_eq!(weighted[0].id, PointId::Num(2));
    assert!((weighted[0].score - 2.25).abs() < 1e-5);
}

#[test]
fn attention_under_cosine_matches_weighted_dot() {
    let (_dir, col) = words();
    // Only the "female" axis matters.
    let hits = attention_search(
        &col,
        &[1.0, 1.0, 1.0, 1.0],
        &[0.0, 0.0, 1.0, 0.0],
        2,
        10,
        None,
    )
    .unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.id.clone()).collect();
    assert!(ids.contains(&PointId::from("woman")) && ids.contains(&PointId::from("queen")));
}

#[test]
fn conceptual_search_goes_through_the_encoder() {
    let (_dir, col) = words();
    let encoder = |text: &str| -> Vec<f32> {
        if text.contains("fruit") {
            vec![0.0, 0.0, 0.0, 1.0]
        } else {
            vec![1.0, 0.0, 0.0, 0.0]
        }
    };
    let hits = conceptual_search(&col, &encoder, "a red fruit", 1, None).unwrap();
    assert_eq!(hits[0].id, PointId::from("apple"));
    let bad = |_: &str| vec![1.0f32; 3];
    assert!(matches!(
        conceptual_search(&col, &bad, "x", 1, None),
        Err(MindError::Dimension { .. })
    ));
}
