//! Point reads: get by id, scroll with a cursor, count, collection info.

use super::Collection;
use crate::config::IndexConfig;
use crate::error::{EngineError, Result};
use crate::filter::Filter;
use crate::point::{Point, PointId, PointVersion};
use crate::segment::SegmentIndex;
use serde::Serialize;

/// Most points one scroll page returns.
pub const MAX_SCROLL_LIMIT: usize = 10_000;

/// A page request for [`Collection::scroll`]. Points come in id order (numbers, then
/// strings); pass the previous page's `next` as `after` to continue.
#[derive(Debug, Clone, Default)]
pub struct ScrollRequest {
    /// Start after this id (exclusive); `None` = from the beginning.
    pub after: Option<PointId>,
    /// Page size (1 to 10,000).
    pub limit: usize,
    /// Only points whose payload matches.
    pub filter: Option<Filter>,
    /// Include vectors.
    pub with_vector: bool,
}

/// One page of a scroll.
#[derive(Debug, Clone, Serialize)]
pub struct ScrollPage {
    /// The points, in id order.
    pub points: Vec<Point>,
    /// Cursor for the next page; `None` when this page reached the end.
    pub next: Option<PointId>,
}

/// Facts about a collection.
#[derive(Debug, Clone, Serialize)]
pub struct CollectionInfo {
    /// Name.
    pub name: String,
    /// Vector length.
    pub dimension: usize,
    /// Metric name.
    pub metric: String,
    /// Index configuration.
    pub index: IndexConfig,
    /// Live points.
    pub points: usize,
    /// Sealed segments.
    pub sealed_segments: usize,
    /// Rows in sealed segments (deleted ones included).
    pub sealed_rows: usize,
    /// Rows in the growing segment (deleted ones included).
    pub growing_rows: usize,
    /// Deleted rows still taking space (reclaimed by compaction).
    pub deleted_rows: usize,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Bytes of write-ahead log.
    pub wal_bytes: u64,
    /// Last applied log sequence number.
    pub applied_seq: u64,
    /// The WAL fsync policy.
    pub fsync: String,
    /// Past versions kept, when the collection keeps history (`None` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub past_versions: Option<usize>,
    /// Bytes the growing segment's rows took in the log (what `seal_bytes` bounds).
    pub growing_bytes: usize,
    /// The background maintenance worker: queue depth and counters.
    pub maintenance: super::MaintenanceInfo,
    /// Payload graphs in the installed segment graphs: small graphs over the rows of one
    /// selective payload value each, walked by searches filtered on that value.
    pub payload_graphs: usize,
    /// The list cache of paged IVF indexes (`on_disk` with `cache_bytes`), when in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ivf_list_cache: Option<ListCacheInfo>,
}

/// What the list cache of a collection's paged IVF indexes holds and has done since the
/// collection was opened (or the budget last changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListCacheInfo {
    /// The byte budget (`cache_bytes`).
    pub budget_bytes: u64,
    /// Bytes of lists held now.
    pub resident_bytes: u64,
    /// Lists held now.
    pub lists: u64,
    /// List visits answered from the cache.
    pub hits: u64,
    /// List visits that read the index file.
    pub misses: u64,
    /// Bytes read from index files.
    pub read_bytes: u64,
    /// Lists evicted to make room.
    pub evictions: u64,
    /// Reads that failed; each left one list out of the search that needed it.
    pub read_errors: u64,
}

impl From<paradox_index::ListCacheStats> for ListCacheInfo {
    fn from(s: paradox_index::ListCacheStats) -> Self {
        ListCacheInfo {
            budget_bytes: s.budget_bytes,
            resident_bytes: s.resident_bytes,
            lists: s.lists,
            hits: s.hits,
            misses: s.misses,
            read_bytes: s.bytes_read,
            evictions: s.evictions,
            read_errors: s.read_errors,
        }
    }
}

impl Collection {
    /// Points by id, in the order asked; `None` for ids that do not exist.
    pub fn get(&self, ids: &[PointId]) -> Result<Vec<Option<Point>>> {
        let state = self.state.read();
        let map = state.ids.read();
        Ok(ids
            .iter()
            .map(|id| {
                map.get(id)
                    .map(|loc| state.meta(loc).to_point(state.vector(loc)))
            })
            .collect())
    }

    /// Every version of `id`, oldest first: its past versions (each with the time it
    /// was replaced or deleted), then the current one if the point is live. Empty for an
    /// id never written. Needs a collection created with `history: true`.
    pub fn history(&self, id: &PointId) -> Result<Vec<PointVersion>> {
        let state = self.state.read();
        let Some(history) = &state.history else {
            return Err(EngineError::invalid(
                "history",
                format!(
                    "collection '{}' keeps no history (create it with history: true)",
                    self.config.name
                ),
            ));
        };
        let mut versions: Vec<PointVersion> = history
            .rows_of(id)
            .iter()
            .map(|&row| PointVersion {
                point: history.meta(row).to_point(history.vector(row)),
                valid_to: Some(history.valid_to(row)),
            })
            .collect();
        let current = state.ids.read().get(id);
        if let Some(loc) = current {
            versions.push(PointVersion {
                point: state.meta(loc).to_point(state.vector(loc)),
                valid_to: None,
            });
        }
        Ok(versions)
    }

    /// One page of points in id order.
    pub fn scroll(&self, request: &ScrollRequest) -> Result<ScrollPage> {
        if request.limit == 0 || request.limit > MAX_SCROLL_LIMIT {
            return Err(EngineError::invalid(
                "limit",
                format!(
                    "must be between 1 and {MAX_SCROLL_LIMIT}, got {}",
                    request.limit
                ),
            ));
        }
        let state = self.state.read();
        let mut points = Vec::with_capacity(request.limit.min(1024));
        let mut next = None;
        let ids = state.ids.read();
        for loc in ids.locations_after(request.after.as_ref()) {
            if request
                .filter
                .as_ref()
                .is_some_and(|f| !f.matches(&state.payload(loc)))
            {
                continue;
            }
            if points.len() == request.limit {
                next = points.last().map(|p: &Point| p.id.clone());
                break;
            }
            let mut point = state.meta(loc).to_point(if request.with_vector {
                state.vector(loc)
            } else {
                &[]
            });
            if !request.with_vector {
                point.vector = Vec::new();
            }
            points.push(point);
        }
        Ok(ScrollPage { points, next })
    }

    /// Number of live points, or of those whose payload matches `filter`.
    pub fn count(&self, filter: Option<&Filter>) -> Result<usize> {
        let state = self.state.read();
        Ok(match filter {
            None => state.ids.read().len(),
            Some(f) => state.matching(f).len(),
        })
    }

    /// Sizes, segments and settings.
    pub fn info(&self) -> CollectionInfo {
        let maintenance = self.maintenance_info();
        let state = self.state.read();
        let points = state.ids.read().len();
        CollectionInfo {
            name: self.config.name.clone(),
            dimension: self.config.dimension,
            metric: self.config.metric.as_str().to_string(),
            index: self.index_config(),
            points,
            sealed_segments: state.sealed.len(),
            sealed_rows: state.sealed_rows(),
            growing_rows: state.growing.len(),
            deleted_rows: state.deleted_rows(),
            segment_bytes: state.sealed.iter().map(|e| e.segment.file_len()).sum(),
            wal_bytes: self.wal.size_bytes(),
            applied_seq: state.applied_seq(),
            fsync: self.wal.policy().to_string(),
            past_versions: state.history.as_ref().map(|h| h.len()),
            growing_bytes: state.growing.bytes(),
            maintenance,
            payload_graphs: state
                .sealed
                .iter()
                .filter_map(|e| e.segment.index())
                .map(|index| match &*index {
                    SegmentIndex::Graph(graph) => graph.payload.len(),
                    SegmentIndex::Ivf(_) => 0,
                })
                .sum(),
            ivf_list_cache: self.list_cache_info(),
        }
    }
}
