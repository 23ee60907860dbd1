//! The client's data types and their conversions to and from the protobuf messages.
//! Payloads and filters are `serde_json::Value`s in the same JSON shapes the server's REST
//! API documents.

use crate::proto as pb;
use crate::ClientError;
use serde_json::{Map, Value};

/// A point id: an unsigned integer or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointId {
    /// Numeric id.
    Num(u64),
    /// String id.
    Str(String),
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

impl PointId {
    pub(crate) fn to_pb(&self) -> pb::PointId {
        pb::PointId {
            kind: Some(match self {
                PointId::Num(n) => pb::point_id::Kind::Num(*n),
                PointId::Str(s) => pb::point_id::Kind::Str(s.clone()),
            }),
        }
    }

    pub(crate) fn from_pb(id: Option<pb::PointId>) -> Result<PointId, ClientError> {
        match id.and_then(|id| id.kind) {
            Some(pb::point_id::Kind::Num(n)) => Ok(PointId::Num(n)),
            Some(pb::point_id::Kind::Str(s)) => Ok(PointId::Str(s)),
            None => Err(ClientError::Protocol(
                "server sent a point without id".into(),
            )),
        }
    }
}

/// A point to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoint {
    /// The id; an existing point with it is replaced.
    pub id: PointId,
    /// The vector.
    pub vector: Vec<f32>,
    /// A JSON object (or `Value::Null` for none).
    pub payload: Value,
    /// Encoder version (e.g. `minilm@1`).
    pub encoder_version: Option<String>,
}

impl NewPoint {
    /// A point with no payload.
    pub fn new(id: impl Into<PointId>, vector: Vec<f32>) -> Self {
        NewPoint {
            id: id.into(),
            vector,
            payload: Value::Null,
            encoder_version: None,
        }
    }

    /// Sets the payload (a JSON object).
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }

    pub(crate) fn to_pb(&self) -> pb::NewPoint {
        pb::NewPoint {
            id: Some(self.id.to_pb()),
            vector: self.vector.clone(),
            payload_json: if self.payload.is_null() {
                String::new()
            } else {
                self.payload.to_string()
            },
            encoder_version: self.encoder_version.clone(),
            provenance: None,
        }
    }
}

pub(crate) fn parse_payload(json: &str) -> Result<Map<String, Value>, ClientError> {
    if json.is_empty() {
        return Ok(Map::new());
    }
    serde_json::from_str(json)
        .map_err(|e| ClientError::Protocol(format!("server sent an invalid payload: {e}")))
}

/// A stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The id.
    pub id: PointId,
    /// The vector (empty unless requested).
    pub vector: Vec<f32>,
    /// The payload.
    pub payload: Map<String, Value>,
    /// Encoder version.
    pub encoder_version: Option<String>,
    /// First written (ms since the Unix epoch).
    pub created_at: i64,
    /// Last written (ms since the Unix epoch).
    pub updated_at: i64,
}

impl Point {
    pub(crate) fn from_pb(p: pb::Point) -> Result<Point, ClientError> {
        Ok(Point {
            id: PointId::from_pb(p.id)?,
            vector: p.vector,
            payload: parse_payload(&p.payload_json)?,
            encoder_version: p.encoder_version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        })
    }
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The id.
    pub id: PointId,
    /// Squared L2 distance (l2) or similarity (dot, cosine).
    pub score: f32,
    /// The payload, when requested.
    pub payload: Option<Map<String, Value>>,
    /// The vector, when requested (empty otherwise).
    pub vector: Vec<f32>,
}

impl Hit {
    pub(crate) fn from_pb(h: pb::ScoredPoint) -> Result<Hit, ClientError> {
        Ok(Hit {
            id: PointId::from_pb(h.id)?,
            score: h.score,
            payload: h.payload_json.as_deref().map(parse_payload).transpose()?,
            vector: h.vector,
        })
    }
}

/// A search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Query vector.
    pub vector: Vec<f32>,
    /// Hits wanted.
    pub k: usize,
    /// Payload filter (JSON), e.g. `{"key": "lang", "eq": "en"}`.
    pub filter: Option<Value>,
    /// Return payloads.
    pub with_payload: bool,
    /// Return vectors.
    pub with_vector: bool,
    /// HNSW beam width for this search.
    pub ef: Option<usize>,
    /// IVF lists visited for this search.
    pub nprobe: Option<usize>,
    /// Exact search, ignoring indexes.
    pub exact: bool,
    /// Search the memory as it was at this time (ms since the Unix epoch); needs a
    /// collection created with history.
    pub as_of: Option<i64>,
}

impl Search {
    /// Top-`k` with payloads.
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        Search {
            vector,
            k,
            filter: None,
            with_payload: true,
            with_vector: false,
            ef: None,
            nprobe: None,
            exact: false,
            as_of: None,
        }
    }

    /// Searches the memory as it was at `millis` (ms since the Unix epoch).
    pub fn as_of(mut self, millis: i64) -> Self {
        self.as_of = Some(millis);
        self
    }

    /// Adds a filter.
    pub fn with_filter(mut self, filter: Value) -> Self {
        self.filter = Some(filter);
        self
    }

    pub(crate) fn to_pb(&self, collection: &str) -> pb::SearchRequest {
        pb::SearchRequest {
            collection: collection.to_string(),
            vector: self.vector.clone(),
            k: self.k as u64,
            filter_json: self
                .filter
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default(),
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            params: Some(pb::SearchParams {
                ef: self.ef.map(|ef| ef as u64),
                nprobe: self.nprobe.map(|n| n as u64),
                exact: self.exact,
            }),
            as_of: self.as_of,
        }
    }
}

/// One version of a point, from [`crate::Client::history`].
#[derive(Debug, Clone, PartialEq)]
pub struct PointVersion {
    /// The point as it was; its `updated_at` is when this version became current.
    pub point: Point,
    /// When it stopped being current (replaced or deleted), ms since the Unix epoch;
    /// `None` for the current version.
    pub valid_to: Option<i64>,
}

impl PointVersion {
    pub(crate) fn from_pb(v: pb::PointVersion) -> Result<PointVersion, ClientError> {
        let point = v
            .point
            .ok_or_else(|| ClientError::Protocol("server sent a version without point".into()))?;
        Ok(PointVersion {
            point: Point::from_pb(point)?,
            valid_to: v.valid_to,
        })
    }
}

/// What a new collection looks like, for [`crate::Client::create_collection_with`].
///
/// ```
/// use paradox_client::CollectionSpec;
/// let spec = CollectionSpec::new("docs", 384).metric("dot").history(true);
/// assert!(spec.history);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSpec {
    /// Name.
    pub name: String,
    /// Vector length.
    pub dimension: usize,
    /// `cosine` (default), `dot` or `l2`.
    pub metric: String,
    /// Index config as JSON (e.g. `{"kind":"hnsw","m":16}`); `None` for the default (auto).
    pub index_json: Option<String>,
    /// Keep every past version of every point (point history, as-of search, trajectories).
    pub history: bool,
}

impl CollectionSpec {
    /// A cosine collection with the default index and no history.
    pub fn new(name: impl Into<String>, dimension: usize) -> Self {
        CollectionSpec {
            name: name.into(),
            dimension,
            metric: "cosine".into(),
            index_json: None,
            history: false,
        }
    }

    /// Sets the metric (`cosine`, `dot` or `l2`).
    pub fn metric(mut self, metric: impl Into<String>) -> Self {
        self.metric = metric.into();
        self
    }

    /// Sets the index config (JSON).
    pub fn index(mut self, index_json: impl Into<String>) -> Self {
        self.index_json = Some(index_json.into());
        self
    }

    /// Keeps (or not) every past version of every point.
    pub fn history(mut self, keep: bool) -> Self {
        self.history = keep;
        self
    }

    pub(crate) fn to_pb(&self) -> pb::CreateCollectionRequest {
        pb::CreateCollectionRequest {
            name: self.name.clone(),
            dimension: self.dimension as u64,
            metric: self.metric.clone(),
            index_json: self.index_json.clone().unwrap_or_default(),
            history: self.history,
        }
    }
}

/// One page of a scroll.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    /// Points in id order.
    pub points: Vec<Point>,
    /// Cursor for the next page.
    pub next: Option<PointId>,
}
