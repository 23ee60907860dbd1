//! Points: what a collection stores. A point is an id, a vector, a JSON payload and the
//! facts that keep an embedding meaningful over time (encoder version, provenance,
//! timestamps).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A point's payload: a JSON object.
pub type Payload = serde_json::Map<String, serde_json::Value>;

/// A point id: an unsigned integer or a string. Ids order integers first (numerically),
/// then strings (bytewise); scrolling follows this order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PointId {
    /// A numeric id.
    Num(u64),
    /// A string id (at most [`PointId::MAX_STR_LEN`] bytes).
    Str(String),
}

impl PointId {
    /// Longest accepted string id, in bytes.
    pub const MAX_STR_LEN: usize = 1024;

    /// Parses a command-line style id: all digits → numeric, anything else → string.
    pub fn parse(text: &str) -> PointId {
        match text.parse::<u64>() {
            Ok(n) => PointId::Num(n),
            Err(_) => PointId::Str(text.to_string()),
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<u64> for PointId {
    fn from(n: u64) -> Self {
        PointId::Num(n)
    }
}

impl From<&str> for PointId {
    fn from(s: &str) -> Self {
        PointId::Str(s.to_string())
    }
}

impl From<String> for PointId {
    fn from(s: String) -> Self {
        PointId::Str(s)
    }
}

/// Where an embedding came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The source object (document URI, file, message id...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The encoder that produced the vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    /// The pipeline or job that ran the encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
}

/// A point to write. Timestamps are assigned by the engine.
///
/// ```
/// use paradox_engine::{NewPoint, PointId};
/// let p = NewPoint::new(7u64, vec![0.1, 0.2, 0.3])
///     .with_payload(serde_json::json!({"lang": "en"}).as_object().unwrap().clone())
///     .with_encoder_version("minilm@1");
/// assert_eq!(p.id, PointId::Num(7));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPoint {
    /// The id; an existing point with this id is replaced.
    pub id: PointId,
    /// The vector (length = the collection's dimension).
    pub vector: Vec<f32>,
    /// JSON object payload.
    #[serde(default)]
    pub payload: Payload,
    /// Encoder version that produced the vector (e.g. `"minilm@1"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_version: Option<String>,
    /// Where the vector came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl NewPoint {
    /// A point with an empty payload.
    pub fn new(id: impl Into<PointId>, vector: Vec<f32>) -> Self {
        NewPoint {
            id: id.into(),
            vector,
            payload: Payload::new(),
            encoder_version: None,
            provenance: None,
        }
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the encoder version.
    pub fn with_encoder_version(mut self, version: impl Into<String>) -> Self {
        self.encoder_version = Some(version.into());
        self
    }

    /// Sets the provenance.
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = Some(provenance);
        self
    }
}

/// A stored point, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The id.
    pub id: PointId,
    /// The stored vector (unit length under the cosine metric).
    pub vector: Vec<f32>,
    /// JSON object payload.
    pub payload: Payload,
    /// Encoder version that produced the vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_version: Option<String>,
    /// Where the vector came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// When the id was first written (milliseconds since the Unix epoch).
    pub created_at: i64,
    /// When the point was last written (milliseconds since the Unix epoch).
    pub updated_at: i64,
}

/// One version of a point, from [`crate::Collection::history`]: the point as it was
/// from its `updated_at` until `valid_to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointVersion {
    /// The version (its `updated_at` is when it became current).
    #[serde(flatten)]
    pub point: Point,
    /// When it stopped being current (replaced or deleted), ms since the Unix epoch;
    /// `None` for the current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<i64>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPoint {
    /// The id.
    pub id: PointId,
    /// Squared L2 distance for `l2` (lower is better); similarity for `dot` and `cosine`
    /// (higher is better). Hits are ordered best first.
    pub score: f32,
    /// The payload, when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// The stored vector, when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

/// Per-row facts kept next to a vector in every segment.
///
/// One per stored row, so kept small (72 bytes on 64-bit targets, checked by a test):
/// the rare parts are boxed and the encoder version, the same string for most rows, is
/// shared between rows decoded together (see [`Versions`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowMeta {
    pub id: PointId,
    pub payload: RowPayload,
    pub encoder_version: Option<Arc<str>>,
    pub provenance: Option<Box<Provenance>>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RowMeta {
    pub(crate) fn to_point(&self, vector: &[f32]) -> Point {
        Point {
            id: self.id.clone(),
            vector: vector.to_vec(),
            payload: self.payload.to_payload(),
            encoder_version: self.encoder_version.as_deref().map(str::to_owned),
            provenance: self.provenance.as_deref().cloned(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A row's payload: no allocation when empty (most rows of many collections), one box
/// otherwise. Reads as a [`Payload`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RowPayload(Option<Box<Payload>>);

impl RowPayload {
    /// An owned copy.
    pub fn to_payload(&self) -> Payload {
        self.0.as_deref().cloned().unwrap_or_default()
    }
}

impl From<Payload> for RowPayload {
    fn from(payload: Payload) -> Self {
        RowPayload((!payload.is_empty()).then(|| Box::new(payload)))
    }
}

impl std::ops::Deref for RowPayload {
    type Target = Payload;

    fn deref(&self) -> &Payload {
        static EMPTY: std::sync::LazyLock<Payload> = std::sync::LazyLock::new(Payload::new);
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

/// Shares one allocation among equal encoder versions of rows decoded or written
/// together (a segment, a log record, a batch): consecutive rows almost always carry the
/// same version. Remembers the last version seen only, so its memory is bounded.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    last: Option<Arc<str>>,
}

impl Versions {
    pub fn intern(&mut self, version: &str) -> Arc<str> {
        match &self.last {
            Some(last) if **last == *version => last.clone(),
            _ => {
                let fresh: Arc<str> = Arc::from(version);
                self.last = Some(fresh.clone());
                fresh
            }
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn row_meta_stays_small() {
        // Held once per stored row: growth here is RAM per point at every scale.
        assert_eq!(std::mem::size_of::<RowMeta>(), 72);
    }

    #[test]
    fn row_payload_reads_as_a_payload() {
        let empty = RowPayload::from(Payload::new());
        assert!(empty.is_empty());
        assert_eq!(empty, RowPayload::default());
        let full = RowPayload::from(serde_json::json!({"a": 1}).as_object().cloned().unwrap());
        assert_eq!(full.get("a"), Some(&serde_json::json!(1)));
        assert_eq!(full.to_payload().len(), 1);
    }

    #[test]
    fn versions_share_consecutive_equal_strings() {
        let mut versions = Versions::default();
        let a = versions.intern("minilm@1");
        let b = versions.intern("minilm@1");
        assert!(Arc::ptr_eq(&a, &b));
        let c = versions.intern("minilm@2");
        assert_eq!(&*c, "minilm@2");
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
