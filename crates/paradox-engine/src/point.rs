//! Points: what a collection stores. A point is an id, a vector, a JSON payload and the
//! facts that keep an embedding meaningful over time (encoder version, provenance,
//! timestamps).

use serde::{Deserialize, Serialize};
use std::fmt;

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
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowMeta {
    pub id: PointId,
    pub payload: Payload,
    pub encoder_version: Option<String>,
    pub provenance: Option<Provenance>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RowMeta {
    pub(crate) fn to_point(&self, vector: &[f32]) -> Point {
        Point {
            id: self.id.clone(),
            vector: vector.to_vec(),
            payload: self.payload.clone(),
            encoder_version: self.encoder_version.clone(),
            provenance: self.provenance.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
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
