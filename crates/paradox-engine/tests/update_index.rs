//! Changing a collection's index config keeps its points and survives a reopen.

use paradox_engine::{CollectionConfig, Engine, IndexConfig, Metric, NewPoint, SearchRequest};

#[test]
fn update_index_config_keeps_points_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path()).unwrap();
        let docs = engine
            .create_collection(CollectionConfig::new("docs", 2, Metric::L2))
            .unwrap();
        docs.upsert(vec![
            NewPoint::new(1u64, vec![0.0, 0.0]),
            NewPoint::new(2u64, vec![5.0, 5.0]),
        ])
        .unwrap();
        drop(docs);
        let updated = engine
            .update_index_config("docs", IndexConfig::Flat)
            .unwrap();
        assert_eq!(updated.config().index, IndexConfig::Flat);
        let hits = updated
            .search(&SearchRequest::new(vec![4.0, 4.0], 1))
            .unwrap();
        assert_eq!(hits[0].id, 2u64.into());
        updated
            .upsert(vec![NewPoint::new(3u64, vec![1.0, 1.0])])
            .unwrap();
        assert!(engine
            .update_index_config("nope", IndexConfig::Flat)
            .is_err());
    }
    let engine = Engine::open(dir.path()).unwrap();
    let docs = engine.collection("docs").unwrap();
    assert_eq!(docs.config().index, IndexConfig::Flat);
    assert_eq!(docs.count(None).unwrap(), 3);
}
