//! Payload filters: conditions on JSON payload fields, combined with and / or / not.
//!
//! JSON form (what the CLI, REST and Python accept):
//!
//! ```json
//! {"key": "category", "eq": "science"}
//! {"key": "tags", "in": ["a", "b"]}
//! {"key": "year", "range": {"gte": 2010, "lt": 2020}}
//! {"key": "author.name", "exists": true}
//! {"and": [ ... ]}   {"or": [ ... ]}   {"not": { ... }}
//! ```
//!
//! Keys are dotted paths into nested objects. When the payload value is an array, a
//! condition matches if any element matches. Numbers compare by value (`1` equals `1.0`).
//! `range` applies to numbers only; `exists` is true when the key is present and not null.

use crate::error::{EngineError, Result};
use crate::point::Payload;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

/// A condition over a point's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// The field equals the value.
    Eq {
        /// Dotted key path.
        key: String,
        /// The value to match.
        value: Value,
    },
    /// The field equals one of the values.
    In {
        /// Dotted key path.
        key: String,
        /// Accepted values.
        values: Vec<Value>,
    },
    /// The numeric field lies in the range (each bound optional).
    Range {
        /// Dotted key path.
        key: String,
        /// Bounds.
        range: Range,
    },
    /// The field is present (and not null) or absent.
    Exists {
        /// Dotted key path.
        key: String,
        /// `true`: must be present; `false`: must be absent.
        exists: bool,
    },
    /// All sub-filters match.
    And(Vec<Filter>),
    /// At least one sub-filter matches.
    Or(Vec<Filter>),
    /// The sub-filter does not match.
    Not(Box<Filter>),
}

/// Numeric bounds for [`Filter::Range`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Strictly greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Greater than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<f64>,
    /// Strictly less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Less than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<f64>,
}

impl Range {
    fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

impl Filter {
    /// `key == value`.
    pub fn eq(key: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Eq {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Whether the payload satisfies the filter.
    pub fn matches(&self, payload: &Payload) -> bool {
        match self {
            Filter::Eq { key, value } => any_value(payload, key, |v| values_equal(v, value)),
            Filter::In { key, values } => {
                any_value(payload, key, |v| values.iter().any(|w| values_equal(v, w)))
            }
            Filter::Range { key, range } => any_value(payload, key, |v| {
                v.as_f64().is_some_and(|x| range.contains(x))
            }),
            Filter::Exists { key, exists } => {
                let present = lookup(payload, key).is_some_and(|v| !v.is_null());
                present == *exists
            }
            Filter::And(parts) => parts.iter().all(|f| f.matches(payload)),
            Filter::Or(parts) => parts.iter().any(|f| f.matches(payload)),
            Filter::Not(inner) => !inner.matches(payload),
        }
    }

    /// Parses the JSON form, with errors that name the offending part.
    pub fn from_json(value: &Value) -> Result<Filter> {
        parse(value, "filter")
    }

    /// Parses the JSON form from text.
    pub fn from_json_str(text: &str) -> Result<Filter> {
        let value: Value = serde_json::from_str(text).map_err(|e| EngineError::InvalidJson {
            what: "filter",
            message: e.to_string(),
        })?;
        Filter::from_json(&value)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Filter::Eq { key, value } => json!({"key": key, "eq": value}),
            Filter::In { key, values } => json!({"key": key, "in": values}),
            Filter::Range { key, range } => json!({"key": key, "range": range}),
            Filter::Exists { key, exists } => json!({"key": key, "exists": exists}),
            Filter::And(parts) => {
                json!({"and": parts.iter().map(Filter::to_json).collect::<Vec<_>>()})
            }
            Filter::Or(parts) => {
                json!({"or": parts.iter().map(Filter::to_json).collect::<Vec<_>>()})
            }
            Filter::Not(inner) => json!({"not": inner.to_json()}),
        }
    }
}

fn lookup<'a>(payload: &'a Payload, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut current = payload.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

fn any_value(payload: &Payload, key: &str, pred: impl Fn(&Value) -> bool) -> bool {
    match lookup(payload, key) {
        Some(Value::Array(items)) => items.iter().any(&pred),
        Some(v) => pred(v),
        None => false,
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn bad(path: &str, message: impl Into<String>) -> EngineError {
    EngineError::InvalidJson {
        what: "filter",
        message: format!("at {path}: {}", message.into()),
    }
}

fn parse(value: &Value, path: &str) -> Result<Filter> {
    let obj = value
        .as_object()
        .ok_or_else(|| bad(path, format!("expected an object, got {value}")))?;
    for combinator in ["and", "or", "not"] {
        if let Some(inner) = obj.get(combinator) {
            if obj.len() != 1 {
                return Err(bad(
                    path,
                    format!("`{combinator}` must be the only key of its object"),
                ));
            }
            let here = format!("{path}.{combinator}");
            return match combinator {
                "not" => Ok(Filter::Not(Box::new(parse(inner, &here)?))),
                _ => {
                    let items = inner
                        .as_array()
                        .ok_or_else(|| bad(&here, "expected an array of filters"))?;
                    let parts = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| parse(v, &format!("{here}[{i}]")))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(if combinator == "and" {
                        Filter::And(parts)
                    } else {
                        Filter::Or(parts)
                    })
                }
            };
        }
    }
    let key = match obj.get("key") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        Some(_) => return Err(bad(path, "`key` must be a non-empty string")),
        None => {
            return Err(bad(
                path,
                "expected `key` with one of eq / in / range / exists, or `and` / `or` / `not`",
            ))
        }
    };
    let conditions: Vec<&str> = ["eq", "in", "range", "exists"]
        .into_iter()
        .filter(|c| obj.contains_key(*c))
        .collect();
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "key" | "eq" | "in" | "range" | "exists"))
    {
        return Err(bad(path, format!("unknown field `{unknown}`")));
    }
    match conditions.as_slice() {
        ["eq"] => Ok(Filter::Eq {
            key,
            value: obj["eq"].clone(),
        }),
        ["in"] => {
            let values = obj["in"]
                .as_array()
                .ok_or_else(|| bad(path, "`in` expects an array of values"))?
                .clone();
            Ok(Filter::In { key, values })
        }
        ["range"] => {
            let range: Range = serde_json::from_value(obj["range"].clone()).map_err(|e| {
                bad(
                    path,
                    format!("`range`: {e}; expected numbers under gt/gte/lt/lte"),
                )
            })?;
            if range == Range::default() {
                return Err(bad(path, "`range` needs at least one of gt, gte, lt, lte"));
            }
            Ok(Filter::Range { key, range })
        }
        ["exists"] => {
            let exists = obj["exists"]
                .as_bool()
                .ok_or_else(|| bad(path, "`exists` expects true or false"))?;
            Ok(Filter::Exists { key, exists })
        }
        [] => Err(bad(
            path,
            format!("key `{key}` needs one of eq, in, range, exists"),
        )),
        many => Err(bad(
            path,
            format!("one condition per object, got {}", many.join(", ")),
        )),
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Filter::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// Builds a payload from a JSON object literal; handy in tests and examples.
pub fn payload(value: Value) -> Payload {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_match() {
        let p = payload(
            json!({"cat": "a", "year": 2015, "tags": ["x", "y"], "m": {"lang": "en"}, "n": null}),
        );
        assert!(Filter::eq("cat", "a").matches(&p));
        assert!(!Filter::eq("cat", "b").matches(&p));
        assert!(Filter::eq("year", 2015.0).matches(&p));
        assert!(Filter::eq("tags", "y").matches(&p));
        assert!(Filter::eq("m.lang", "en").matches(&p));
        let f =
            Filter::from_json(&json!({"key": "year", "range": {"gte": 2010, "lt": 2020}})).unwrap();
        assert!(f.matches(&p));
        let f = Filter::from_json(&json!({"key": "year", "range": {"gt": 2015}})).unwrap();
        assert!(!f.matches(&p));
        let f = Filter::from_json(&json!({"key": "n", "exists": true})).unwrap();
        assert!(!f.matches(&p));
        let f = Filter::from_json(&json!({"not": {"key": "zzz", "exists": true}})).unwrap();
        assert!(f.matches(&p));
        let f = Filter::from_json(
            &json!({"or": [{"key": "cat", "eq": "b"}, {"key": "cat", "in": ["a", "c"]}]}),
        )
        .unwrap();
        assert!(f.matches(&p));
        let f = Filter::from_json(
            &json!({"and": [{"key": "cat", "eq": "a"}, {"key": "year", "eq": 1999}]}),
        )
        .unwrap();
        assert!(!f.matches(&p));
    }

    #[test]
    fn malformed_filters_name_the_problem() {
        let cases = [
            (json!(3), "expected an object"),
            (json!({"key": "a"}), "needs one of"),
            (json!({"key": "a", "eq": 1, "in": [1]}), "one condition"),
            (json!({"key": "a", "range": {}}), "at least one"),
            (json!({"key": "a", "range": {"gt": "x"}}), "range"),
            (json!({"key": "a", "in": 3}), "array"),
            (json!({"and": {"key": "a"}}), "array of filters"),
            (
                json!({"and": [{"key": "a", "eq": 1}, {"bogus": 1}]}),
                "filter.and[1]",
            ),
            (
                json!({"key": "a", "eq": 1, "extra": 2}),
                "unknown field `extra`",
            ),
        ];
        for (value, expected) in cases {
            let err = Filter::from_json(&value).unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn json_round_trip() {
        let f = Filter::from_json(&json!({"and": [{"key": "a", "eq": 1}, {"not": {"key": "b", "range": {"lt": 3.5}}}, {"key": "c", "exists": false}]})).unwrap();
        let back: Filter = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(f, back);
    }
}
