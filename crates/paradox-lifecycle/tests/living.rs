//! Living collections end to end, with the weightless hashing encoder as v1 and v2 (two
//! really different spaces: other dimensions and other features). Removing spaces:
//! `living_spaces.rs`.

mod common;

use common::{add_v2, corpus, payload, setup, v1, v2};
use paradox_engine::{NewPoint, PointId};
use paradox_lifecycle::adapter::AdapterKind;
use paradox_lifecycle::drift::DriftConfig;
use paradox_lifecycle::encoder::{Encoder, EncoderInfo};
use paradox_lifecycle::hashing::{HashingEncoder, HashingOptions};
use paradox_lifecycle::living::{
    DriftWindow, HitSource, LivingCollection, LivingSearch, MigrationOptions, MigrationPhase,
    OverlayState, PriorityWeights, SpaceSpec,
};
use paradox_lifecycle::LifecycleError;
use std::sync::Arc;

#[test]
fn migration_fills_the_new_space_and_switches_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, living) = setup(dir.path(), 600);
    add_v2(&living);
    assert_eq!(living.count("hash@2").unwrap(), 0);
    assert_eq!(living.default_space(), "hash@1");

    let mut options = MigrationOptions::to("hash@2");
    options.batch_size = 64;
    options.switch_at = 0.9;
    living.migrate(options).unwrap();
    let status = living.wait_for_migration().unwrap();
    assert_eq!(status.phase, MigrationPhase::Done, "{status:?}");
    assert_eq!(status.reencoded, 600);
    assert_eq!(status.pending_at_start, 600);
    assert!(status.switched);
    assert_eq!(living.default_space(), "hash@2");
    assert_eq!(living.count("hash@2").unwrap(), 600);

    // Every migrated vector is exactly what v2 makes of the point's text, payload copied.
    let texts = corpus(600);
    let got = living.get("hash@2", &[PointId::Num(17)]).unwrap()[0]
        .clone()
        .unwrap();
    let want = v2().encode_texts(&[texts[17].as_str()]).unwrap();
    let cos: f32 = got.vector.iter().zip(&want).map(|(a, b)| a * b).sum();
    assert!(cos > 0.9999, "cosine {cos}");
    assert_eq!(got.payload["topic"], "odd");
    assert_eq!(got.encoder_version.as_deref(), Some("hash@2"));

    // Running again finds nothing to do.
    living.migrate(MigrationOptions::to("hash@2")).unwrap();
    let again = living.wait_for_migration().unwrap();
    assert_eq!(again.pending_at_start, 0);
}

#[test]
fn a_paused_migration_resumes_where_it_stopped_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, living) = setup(dir.path(), 400);
    add_v2(&living);
    let mut options = MigrationOptions::to("hash@2");
    options.batch_size = 20;
    options.rate_limit = Some(200.0);
    living.migrate(options).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    living.pause_migration();
    let paused = living.migration_status().unwrap();
    assert_eq!(paused.phase, MigrationPhase::Paused, "{paused:?}");
    let part = living.count("hash@2").unwrap();
    assert!(part > 0 && part < 400, "migrated {part}");
    drop(living);

    let living = LivingCollection::open(engine, "docs").unwrap();
    assert_eq!(
        living.migration_status().unwrap().phase,
        MigrationPhase::Paused
    );
    living.migrate(MigrationOptions::to("hash@2")).unwrap();
    let done = living.wait_for_migration().unwrap();
    assert_eq!(done.phase, MigrationPhase::Done);
    assert_eq!(done.pending_at_start, 400 - part);
    assert_eq!(living.count("hash@2").unwrap(), 400);
}

#[test]
fn migration_order_follows_importance() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, living) = setup(dir.path(), 200);
    // Points 150.. are important.
    let important: Vec<NewPoint> = living
        .get("hash@1", &(150..200).map(PointId::Num).collect::<Vec<_>>())
        .unwrap()
        .into_iter()
        .map(|p| {
            let p = p.unwrap();
            let mut payload = p.payload.clone();
            payload.insert("importance".into(), serde_json::json!(10.0));
            NewPoint::new(p.id, p.vector).with_payload(payload)
        })
        .collect();
    living.upsert_vectors("hash@1", important).unwrap();
    add_v2(&living);
    let mut options = MigrationOptions::to("hash@2");
    options.batch_size = 50;
    options.rate_limit = Some(100.0);
    options.weights = PriorityWeights {
        access: 0.0,
        recency: 0.0,
        importance: 1.0,
        importance_field: Some("importance".into()),
    };
    living.migrate(options).unwrap();
    // The first batch (50 points) goes out at once; the rate limit holds the next.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while living.count("hash@2").unwrap() < 50 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    living.pause_migration();
    let first: Vec<_> = living
        .get("hash@2", &(150..200).map(PointId::Num).collect::<Vec<_>>())
        .unwrap();
    assert!(
        first.iter().all(Option::is_some),
        "the important points went first"
    );
}

#[test]
fn adapter_backed_search_during_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, living) = setup(dir.path(), 1500);
    add_v2(&living);
    // Calibration: 600 points encoded in v2 (and written there).
    let (forward, backward) = living
        .fit_adapters("hash@1", "hash@2", AdapterKind::Affine { ridge: 1e-3 }, 600)
        .unwrap();
    assert_eq!(
        (forward.from.as_str(), forward.to.as_str()),
        ("hash@1", "hash@2")
    );
    assert_eq!(
        (backward.from.as_str(), backward.to.as_str()),
        ("hash@2", "hash@1")
    );
    assert!(backward.fit.holdout_cosine > 0.5, "{:?}", backward.fit);
    let covered = living.count("hash@2").unwrap();
    assert_eq!(covered, 600);

    // A v2 query finds points v2 does not hold yet, through the adapter.
    let texts = corpus(1500);
    let mut adapter_hits = 0;
    let mut found_self = 0;
    for i in (0..1500).step_by(50) {
        let hits = living
            .search(&LivingSearch {
                space: Some("hash@2".into()),
                text: Some(texts[i].clone()),
                k: 10,
                with_payload: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(hits.len(), 10);
        adapter_hits += hits
            .iter()
            .filter(|h| h.source == HitSource::Adapter)
            .count();
        found_self += hits.iter().any(|h| h.id == PointId::Num(i as u64)) as usize;
        assert!(hits.iter().all(|h| h.payload.is_some()));
    }
    assert!(adapter_hits > 0, "no hit came through the adapter");
    assert!(
        found_self >= 27,
        "the query's own point was found {found_self}/30 times"
    );

    // Without the adapter path (space fully covered) every hit is native.
    living.migrate(MigrationOptions::to("hash@2")).unwrap();
    living.wait_for_migration().unwrap();
    let hits = living
        .search(&LivingSearch {
            space: Some("hash@2".into()),
            text: Some(texts[3].clone()),
            k: 5,
            ..Default::default()
        })
        .unwrap();
    assert!(hits.iter().all(|h| h.source == HitSource::Native));
    assert_eq!(hits[0].id, PointId::Num(3));
}

#[test]
fn points_without_text_get_adapter_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, living) = setup(dir.path(), 300);
    // 20 points with a vector only.
    let extra: Vec<NewPoint> = (1000..1020u64)
        .map(|i| {
            let v = v1()
                .encode_texts(&[&format!("the river and the piano {i}")])
                .unwrap();
            NewPoint::new(i, v)
        })
        .collect();
    living.upsert_vectors("hash@1", extra).unwrap();
    add_v2(&living);
    living
        .fit_adapters("hash@1", "hash@2", AdapterKind::Procrustes, 200)
        .unwrap();
    living.migrate(MigrationOptions::to("hash@2")).unwrap();
    let status = living.wait_for_migration().unwrap();
    assert_eq!(status.adapted, 20, "{status:?}");
    let p = living.get("hash@2", &[PointId::Num(1005)]).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(p.provenance.unwrap().pipeline.as_deref(), Some("adapter"));
}

#[test]
fn deletes_and_payload_updates_reach_every_space() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, living) = setup(dir.path(), 100);
    add_v2(&living);
    living.migrate(MigrationOptions::to("hash@2")).unwrap();
    living.wait_for_migration().unwrap();
    assert_eq!(
        living.delete(&[PointId::Num(5), PointId::Num(6)]).unwrap(),
        2
    );
    for space in ["hash@1", "hash@2"] {
        let got = living
            .get(space, &[PointId::Num(5), PointId::Num(6)])
            .unwrap();
        assert!(got.iter().all(Option::is_none), "{space}");
    }
    // A payload change through the first space reaches the copy in v2.
    let p = living.get("hash@1", &[PointId::Num(7)]).unwrap()[0]
        .clone()
        .unwrap();
    let mut payload = p.payload.clone();
    payload.insert("topic".into(), serde_json::json!("changed"));
    living
        .upsert_vectors(
            "hash@1",
            vec![NewPoint::new(7u64, p.vector).with_payload(payload)],
        )
        .unwrap();
    let copy = living.get("hash@2", &[PointId::Num(7)]).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(copy.payload["topic"], "changed");
}

#[test]
fn overlays_change_the_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, living) = setup(dir.path(), 300);
    let texts = corpus(300);
    let query = texts[10].clone();
    let plain = living
        .search(&LivingSearch {
            text: Some(query.clone()),
            k: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(plain[0].id, PointId::Num(10));
    // A per-point delta equal to point 250's vector pulls it to the top.
    let target = living.get("hash@1", &[PointId::Num(250)]).unwrap()[0]
        .clone()
        .unwrap();
    let mut overlay = OverlayState {
        space: "hash@1".into(),
        weight: 2.0,
        ..Default::default()
    };
    overlay.points.insert("250".into(), target.vector.clone());
    living.set_overlay("pull-250", overlay).unwrap();
    let pulled = living
        .search(&LivingSearch {
            text: Some(query.clone()),
            k: 5,
            context: Some("pull-250".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(pulled[0].id, PointId::Num(250));
    // A cluster delta favours one topic.
    let mut by_topic = OverlayState {
        space: "hash@1".into(),
        weight: 1.0,
        cluster_field: Some("topic".into()),
        ..Default::default()
    };
    by_topic.clusters.insert("odd".into(), {
        let q = v1().encode_texts(&[query.as_str()]).unwrap();
        q.iter().map(|x| x * 0.5).collect()
    });
    living.set_overlay("odd", by_topic).unwrap();
    let odd = living
        .search(&LivingSearch {
            text: Some(query.clone()),
            k: 5,
            context: Some("odd".into()),
            with_payload: true,
            ..Default::default()
        })
        .unwrap();
    let odd_count = odd
        .iter()
        .filter(|h| h.payload.as_ref().unwrap()["topic"] == "odd")
        .count();
    let plain_odd = living
        .search(&LivingSearch {
            text: Some(query),
            k: 5,
            with_payload: true,
            ..Default::default()
        })
        .unwrap()
        .iter()
        .filter(|h| h.payload.as_ref().unwrap()["topic"] == "odd")
        .count();
    assert!(
        odd_count > plain_odd,
        "odd hits {odd_count} vs {plain_odd} without the context"
    );
    assert!(living.remove_overlay("odd").unwrap());
    assert!(!living.remove_overlay("odd").unwrap());
}

#[test]
fn drift_flags_an_encoder_switch_and_not_more_of_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (_engine, living) = setup(dir.path(), 0);
    // Texts in an order unrelated to their content, so old and new windows share a
    // distribution (7919 is prime to 600: a permutation).
    let pool = corpus(600);
    let texts: Vec<String> = (0..600).map(|i| pool[(i * 7919) % 600].clone()).collect();
    let points = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (PointId::Num(i as u64), t.clone(), payload(i)))
        .collect();
    living.upsert_texts(points).unwrap();
    let config = DriftConfig::default();
    let same = living
        .drift("hash@1", DriftWindow::Stored { n: 200 }, &config)
        .unwrap();
    assert!(!same.drifted, "{same:?}");
    // Newer points: the same kind of text, written by another encoder of the same
    // dimension.
    let other = HashingEncoder::with_options(
        "hash",
        9,
        256,
        HashingOptions {
            min_ngram: 0,
            max_ngram: 0,
            word_bigrams: true,
        },
    )
    .unwrap();
    let switched: Vec<NewPoint> = (0..200)
        .map(|i| {
            let v = other.encode_texts(&[texts[i].as_str()]).unwrap();
            NewPoint::new(600 + i as u64, v)
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(5));
    living.upsert_vectors("hash@1", switched).unwrap();
    let report = living
        .drift("hash@1", DriftWindow::Stored { n: 200 }, &config)
        .unwrap();
    assert!(report.drifted, "{report:?}");
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, living) = setup(dir.path(), 50);
    let msg = |e: LifecycleError| e.to_string();
    let e = living
        .search(&LivingSearch {
            space: Some("nope@1".into()),
            vector: Some(vec![0.0; 256]),
            k: 3,
            ..Default::default()
        })
        .unwrap_err();
    assert!(msg(e).contains("unknown space `nope@1`"));
    let e = living
        .search(&LivingSearch {
            vector: Some(vec![0.1; 12]),
            k: 3,
            ..Default::default()
        })
        .unwrap_err();
    assert!(msg(e).contains("expects 256, got 12"));
    let e = living
        .search(&LivingSearch {
            vector: Some(vec![f32::NAN; 256]),
            k: 3,
            ..Default::default()
        })
        .unwrap_err();
    assert!(msg(e).contains("NaN"));
    let e = living
        .search(&LivingSearch {
            text: Some("x".into()),
            k: 0,
            ..Default::default()
        })
        .unwrap_err();
    assert!(msg(e).contains("k must be"));
    let e = living
        .search(&LivingSearch {
            text: Some("x".into()),
            k: 3,
            context: Some("missing".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(msg(e).contains("unknown context `missing`"));
    let e = living
        .add_space(SpaceSpec {
            name: "bad name".into(),
            encoder: None,
            dim: Some(8),
            index: None,
        })
        .unwrap_err();
    assert!(msg(e).contains("invalid space name"));
    let e = living
        .add_space(SpaceSpec {
            name: "hash@1".into(),
            encoder: None,
            dim: Some(8),
            index: None,
        })
        .unwrap_err();
    assert!(msg(e).contains("already exists"));
    let e = living.migrate(MigrationOptions::to("hash@1")).unwrap_err();
    assert!(msg(e).contains("two different spaces"));
    // A space without encoder and without adapter cannot be migrated into.
    living
        .add_space(SpaceSpec {
            name: "raw".into(),
            encoder: None,
            dim: Some(32),
            index: None,
        })
        .unwrap();
    let e = living.migrate(MigrationOptions::to("raw")).unwrap_err();
    assert!(msg(e).contains("nothing can fill it"));
    let mut wrong = OverlayState {
        space: "hash@1".into(),
        weight: 1.0,
        ..Default::default()
    };
    wrong.global = Some(vec![1.0; 3]);
    assert!(msg(living.set_overlay("w", wrong).unwrap_err()).contains("dim 256"));
    let e = LivingCollection::open(engine.clone(), "absent").unwrap_err();
    assert!(msg(e).contains("absent"));
    // Nothing was lost.
    assert_eq!(living.count("hash@1").unwrap(), 50);
    // The text encoder's info must match the space's when attached by hand.
    let e = living
        .attach_encoder("hash@1", Arc::new(v2()) as Arc<dyn Encoder>)
        .unwrap_err();
    assert!(msg(e).contains("registered with encoder hash@1"));
    let info: EncoderInfo = v1().info().clone();
    assert_eq!(info.space(), "hash@1");
    // The state survives a reopen.
    drop(living);
    let again = LivingCollection::open(engine, "docs").unwrap();
    assert_eq!(again.spaces().len(), 2);
}
