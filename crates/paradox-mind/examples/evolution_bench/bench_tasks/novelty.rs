use serde_json::{json, Value};

pub fn section_novelty(_seeds: u64) -> Value {
    json!(null)
}
