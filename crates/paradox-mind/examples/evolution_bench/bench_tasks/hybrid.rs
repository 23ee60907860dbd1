use serde_json::{json, Value};

pub fn section_hybrid(_seeds: u64) -> Value {
    json!(null)
}
