//! Benchmark sections beyond plain CMA-ES.

use serde_json::{json, Value};

pub fn section_surrogate(_seeds: u64) -> Value {
    json!(null)
}
pub fn section_hybrid(_seeds: u64) -> Value {
    json!(null)
}
pub fn section_novelty(_seeds: u64) -> Value {
    json!(null)
}
