//! What the living-collection tests share: a deterministic corpus, the hashing encoders
//! used as v1 and v2 (two really different spaces: other dimensions and other features),
//! and a collection `docs` set up with v1.

use paradox_engine::{CollectionConfig, Engine, Metric, Payload, PointId};
use paradox_lifecycle::encoder::Encoder;
use paradox_lifecycle::hashing::{HashingEncoder, HashingOptions};
use paradox_lifecycle::living::{LivingCollection, LivingOptions, SpaceSpec};
use std::sync::Arc;

const WORDS: &[&str] = &[
    "river", "mountain", "engine", "piano", "garden", "market", "planet", "violin", "bridge",
    "forest", "castle", "rocket", "harbor", "desert", "orchard", "glacier", "lantern", "meadow",
    "canyon", "temple", "island", "volcano", "library", "factory", "theater",
];

/// A deterministic corpus of short sentences sharing vocabulary (so neighbours exist).
pub fn corpus(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let a = WORDS[i % WORDS.len()];
            let b = WORDS[(i / WORDS.len()) % WORDS.len()];
            let c = WORDS[(i * 7 + 3) % WORDS.len()];
            format!("the {a} near the {b} and a {c} number {}", i % 13)
        })
        .collect()
}

pub fn v1() -> HashingEncoder {
    HashingEncoder::new("hash", 1, 256).unwrap()
}

pub fn v2() -> HashingEncoder {
    let options = HashingOptions {
        min_ngram: 2,
        max_ngram: 4,
        word_bigrams: false,
    };
    HashingEncoder::with_options("hash", 2, 384, options).unwrap()
}

pub fn payload(i: usize) -> Payload {
    serde_json::json!({"n": i, "topic": if i.is_multiple_of(2) { "even" } else { "odd" }})
        .as_object()
        .unwrap()
        .clone()
}

/// An engine with collection `docs` (v1 space, text kept in `text`) holding `n` texts.
pub fn setup(dir: &std::path::Path, n: usize) -> (Arc<Engine>, Arc<LivingCollection>) {
    let engine = Arc::new(Engine::open(dir).unwrap());
    engine
        .create_collection(CollectionConfig::new("docs", 256, Metric::Cosine))
        .unwrap();
    let living = LivingCollection::init(
        engine.clone(),
        "docs",
        LivingOptions {
            space: "hash@1".into(),
            encoder: Some(v1().info().clone()),
            text_field: Some("text".into()),
        },
    )
    .unwrap();
    let points = corpus(n)
        .into_iter()
        .enumerate()
        .map(|(i, t)| (PointId::Num(i as u64), t, payload(i)))
        .collect();
    living.upsert_texts(points).unwrap();
    (engine, living)
}

pub fn add_v2(living: &LivingCollection) {
    living
        .add_space(SpaceSpec {
            name: "hash@2".into(),
            encoder: Some(v2().info().clone()),
            dim: None,
            index: None,
        })
        .unwrap();
}
