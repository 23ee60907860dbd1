//! Removing a vector space: what goes with it (companion collection, adapters, overlays,
//! normaliser, the last migration's status, their files), that the removal survives a
//! reopen, and the refusals (unknown, first, default, in a running migration), each a
//! named error that changes nothing.

mod common;

use common::{add_v2, corpus, setup};
use paradox_engine::{Engine, EngineError, PointId};
use paradox_lifecycle::adapter::AdapterKind;
use paradox_lifecycle::encoder::Encoder;
use paradox_lifecycle::hashing::HashingEncoder;
use paradox_lifecycle::living::{
    AdapterEntry, LivingCollection, LivingSearch, MigrationOptions, MigrationPhase,
    MigrationStatus, OverlayState, SpaceSpec, SpaceState, LIFECYCLE_DIR,
};
use paradox_lifecycle::normalize::NormalizeMode;
use paradox_lifecycle::LifecycleError;
use std::path::PathBuf;

fn v3() -> HashingEncoder {
    HashingEncoder::new("hash", 3, 128).unwrap()
}

fn add_space(living: &LivingCollection, name: &str, encoder: Option<&HashingEncoder>) {
    living
        .add_space(SpaceSpec {
            name: name.into(),
            encoder: encoder.map(|e| e.info().clone()),
            dim: Some(encoder.map_or(16, |e| e.info().dim)),
            index: None,
        })
        .unwrap();
}

fn overlay(space: &str, dim: usize) -> OverlayState {
    OverlayState {
        space: space.into(),
        global: Some(vec![0.01; dim]),
        weight: 1.0,
        ..Default::default()
    }
}

fn state_files(engine: &Engine) -> Vec<String> {
    let dir: PathBuf = engine.root().join(LIFECYCLE_DIR).join("docs");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Everything a refused removal must leave as it was.
#[derive(Debug, PartialEq)]
struct MakeUp {
    spaces: Vec<SpaceState>,
    counts: Vec<usize>,
    default: String,
    adapters: Vec<AdapterEntry>,
    overlays: Vec<String>,
    migration: Option<(String, String)>,
    collections: Vec<String>,
    files: Vec<String>,
}

fn make_up(engine: &Engine, living: &LivingCollection) -> MakeUp {
    let spaces = living.spaces();
    let mut collections = engine.list_collections();
    collections.sort();
    MakeUp {
        counts: spaces
            .iter()
            .map(|s| living.count(&s.name).unwrap())
            .collect(),
        spaces,
        default: living.default_space(),
        adapters: living.adapters(),
        overlays: living.overlays(),
        migration: living
            .migration_status()
            .map(|m: MigrationStatus| (m.from, m.to)),
        collections,
        files: state_files(engine),
    }
}

fn space_names(living: &LivingCollection) -> Vec<String> {
    living.spaces().into_iter().map(|s| s.name).collect()
}

#[test]
fn removing_a_space_drops_its_collection_adapters_overlays_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, living) = setup(dir.path(), 200);
    add_v2(&living);
    add_space(&living, "hash@3", Some(&v3()));
    // Adapters both ways between hash@1 and each new space, overlays on every space, a
    // normaliser of hash@2, and a finished migration into it (never made the default).
    let kind = AdapterKind::Affine { ridge: 1e-3 };
    living.fit_adapters("hash@1", "hash@2", kind, 60).unwrap();
    living.fit_adapters("hash@1", "hash@3", kind, 60).unwrap();
    let mut options = MigrationOptions::to("hash@2");
    options.switch_at = 2.0;
    living.migrate(options).unwrap();
    assert_eq!(
        living.wait_for_migration().unwrap().phase,
        MigrationPhase::Done
    );
    living
        .fit_normalizer("hash@2", NormalizeMode::Center, 100)
        .unwrap();
    for (name, space, dim) in [
        ("on-v1", "hash@1", 256),
        ("on-v2", "hash@2", 384),
        ("on-v3", "hash@3", 128),
    ] {
        living.set_overlay(name, overlay(space, dim)).unwrap();
    }
    assert_eq!(living.adapters().len(), 4);
    assert!(state_files(&engine).iter().any(|f| f.contains("hash-v2")));

    let removed = living.remove_space("hash@2").unwrap();
    assert_eq!(removed.name, "hash@2");
    assert_eq!(removed.collection, "docs--hash-v2");

    let check = |living: &LivingCollection| {
        assert_eq!(space_names(living), ["hash@1", "hash@3"]);
        assert!(matches!(
            engine.collection("docs--hash-v2"),
            Err(EngineError::UnknownCollection(_))
        ));
        let pairs: Vec<(String, String)> = living
            .adapters()
            .into_iter()
            .map(|a| (a.from, a.to))
            .collect();
        assert_eq!(
            pairs,
            [
                ("hash@1".to_string(), "hash@3".to_string()),
                ("hash@3".to_string(), "hash@1".to_string())
            ]
        );
        assert_eq!(living.overlays(), ["on-v1", "on-v3"]);
        // The last migration went into the removed space: its status goes too.
        assert!(living.migration_status().is_none());
        assert_eq!(living.default_space(), "hash@1");
        assert_eq!(living.count("hash@1").unwrap(), 200);
        let e = living.count("hash@2").unwrap_err();
        assert!(e.to_string().contains("unknown space `hash@2`"), "{e}");
    };
    check(&living);
    // No file of the removed space is left: its adapters' and its normaliser's.
    let files = state_files(&engine);
    assert!(
        files.iter().all(|f| !f.contains("hash-v2")),
        "left behind: {files:?}"
    );
    assert!(files.iter().any(|f| f.contains("hash-v3")), "{files:?}");
    // The other spaces still search; an overlay of the removed space is unknown.
    let texts = corpus(200);
    let hits = living
        .search(&LivingSearch {
            space: Some("hash@3".into()),
            text: Some(texts[7].clone()),
            k: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 3);
    let e = living
        .search(&LivingSearch {
            text: Some(texts[7].clone()),
            k: 3,
            context: Some("on-v2".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("unknown context `on-v2`"), "{e}");

    // The removal survives a reopen.
    drop(living);
    let living = LivingCollection::open(engine.clone(), "docs").unwrap();
    check(&living);

    // A space added again under the name starts empty, with no adapter, normaliser or
    // recent vectors of the old one.
    add_v2(&living);
    assert_eq!(living.count("hash@2").unwrap(), 0);
    let again = living
        .spaces()
        .into_iter()
        .find(|s| s.name == "hash@2")
        .unwrap();
    assert!(again.normalizer.is_none());
    assert!(living
        .adapters()
        .iter()
        .all(|a| a.from != "hash@2" && a.to != "hash@2"));
    living.migrate(MigrationOptions::to("hash@2")).unwrap();
    assert_eq!(
        living.wait_for_migration().unwrap().phase,
        MigrationPhase::Done
    );
    assert_eq!(living.count("hash@2").unwrap(), 200);
}

#[test]
fn refused_removals_name_the_problem_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, living) = setup(dir.path(), 100);
    add_v2(&living);
    add_space(&living, "raw", None);
    add_space(&living, "spare", None);
    living
        .fit_adapters("hash@1", "hash@2", AdapterKind::Affine { ridge: 1e-3 }, 40)
        .unwrap();
    living.set_overlay("ctx", overlay("hash@2", 384)).unwrap();
    let msg = |e: LifecycleError| e.to_string();
    let before = make_up(&engine, &living);

    let e = living.remove_space("nope@1").unwrap_err();
    assert!(
        msg(e).contains("unknown space `nope@1` in collection `docs`"),
        "unknown"
    );
    assert_eq!(make_up(&engine, &living), before);

    let e = msg(living.remove_space("hash@1").unwrap_err());
    assert!(
        e.contains("space `hash@1` is the first space of collection `docs`")
            && e.contains("cannot be removed"),
        "{e}"
    );
    assert_eq!(make_up(&engine, &living), before);

    living.set_default_space("hash@2").unwrap();
    let with_default = make_up(&engine, &living);
    let e = msg(living.remove_space("hash@2").unwrap_err());
    assert!(
        e.contains("space `hash@2` is the default space of collection `docs`")
            && e.contains("make another space the default first"),
        "{e}"
    );
    assert_eq!(make_up(&engine, &living), with_default);
    living.set_default_space("hash@1").unwrap();

    // A slow migration (2 points every 0.1 s: seconds for 100 points) into hash@2: its
    // target cannot be removed while it runs (its source is the first space); another
    // space can.
    let mut options = MigrationOptions::to("hash@2");
    options.batch_size = 2;
    options.rate_limit = Some(20.0);
    options.switch_at = 2.0;
    living.migrate(options).unwrap();
    let e = msg(living.remove_space("hash@2").unwrap_err());
    assert!(
        e.contains("space `hash@2` is in the running migration `hash@1` -> `hash@2`")
            && e.contains("pause it first"),
        "{e}"
    );
    assert_eq!(
        living.migration_status().unwrap().phase,
        MigrationPhase::Running,
        "the test needs the migration still running"
    );
    living.remove_space("spare").unwrap();
    living.pause_migration();
    assert_eq!(space_names(&living), ["hash@1", "hash@2", "raw"]);
    assert_eq!(living.adapters(), before.adapters);
    assert_eq!(living.overlays(), ["ctx"]);
    assert!(engine.collection("docs--hash-v2").is_ok());
    assert!(engine.collection("docs--raw").is_ok());
    assert!(engine.collection("docs--spare").is_err());
    // Paused, the migration no longer holds its spaces.
    assert_eq!(
        living.migration_status().unwrap().phase,
        MigrationPhase::Paused
    );
    living.remove_space("hash@2").unwrap();
    assert!(living.migration_status().is_none());
    assert!(living.overlays().is_empty());

    // All of it as stored.
    drop(living);
    let living = LivingCollection::open(engine.clone(), "docs").unwrap();
    assert_eq!(space_names(&living), ["hash@1", "raw"]);
    assert_eq!(living.count("hash@1").unwrap(), 100);
    assert!(living.migration_status().is_none());
    assert!(living.get("hash@1", &[PointId::Num(3)]).unwrap()[0].is_some());
}
