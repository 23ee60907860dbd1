//! Exact search over every segment of a collection, with payload filters, batches and
//! parallelism across row ranges.
//!
//! A search holds the state's read lock for its duration: only new points are applied
//! during one (appended to the growing segment, see `GrowingSegment::append`), so a
//! search sees every stored row as it was when it started plus, in the growing segment,
//! a prefix of whole batches that may grow while it runs (each part of a search bounds
//! itself by the rows it saw; a batch of requests may see different prefixes). Large collections are split
//! into work units of `parallel_threshold` rows (an indexed segment is one unit; sealed
//! IVF segments with the same quantisers are searched as a group, cut into slices of its
//! segments: see `ivf_group`), run by the calling thread with free rayon workers
//! joining in ([`crate::helped`]), and the per-unit selections are merged.

use super::state::{Location, State};
use super::Collection;
use crate::config::{IndexConfig, MAX_K};
use crate::error::{EngineError, Result};
use crate::filter::Filter;
use crate::helped;
use crate::point::ScoredPoint;
use crate::segment::{Partition, PayloadGraph, RowSet, SegmentGraph, SegmentIndex};
use paradox_index::{FlatIndex, IvfIndex, TopK, VectorIndex, VectorView};
use rayon::prelude::*;
use serde::Deserialize;
use std::sync::{Arc, OnceLock};

/// One search.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchRequest {
    /// The query vector (length = the collection's dimension).
    pub vector: Vec<f32>,
    /// How many hits (1 to 10,000). Fewer come back when fewer points match.
    pub k: usize,
    /// Only points whose payload matches.
    #[serde(default)]
    pub filter: Option<Filter>,
    /// Return payloads.
    #[serde(default)]
    pub with_payload: bool,
    /// Return stored vectors.
    #[serde(default)]
    pub with_vector: bool,
    /// Per-request knobs (`ef`, exact search).
    #[serde(default)]
    pub params: SearchParams,
    /// Search the memory as it was at this time (milliseconds since the Unix epoch):
    /// each point's version current then, deleted points included if they were live.
    /// Needs a collection created with `history: true`.
    #[serde(default)]
    pub as_of: Option<i64>,
}

/// Per-request search knobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchParams {
    /// HNSW beam width for this request (default: the collection's `ef_search`).
    pub ef: Option<usize>,
    /// IVF lists visited for this request (default: the collection's `nprobe`).
    pub nprobe: Option<usize>,
    /// Scan every point exactly, ignoring indexes.
    pub exact: bool,
}

/// Below this fraction of rows passing the filter, a segment is always searched by
/// scanning its matching rows exactly. Above it, a cost model picks the cheaper of that
/// scan (~2 distance computations per match, the rows being scattered) and a graph
/// search with the filter applied (~`ef · 2m / fraction`).
pub const EXACT_SELECTIVITY: f64 = 0.02;
/// Largest factor by which a filtered graph search widens its beam (1: it does not; the
/// beam already passes over non-matching nodes until `ef` matches are found, so widening
/// measured as pure cost).
pub const MAX_EF_WIDENING: f64 = 1.0;
/// Largest factor by which a filtered IVF search widens `nprobe`.
pub const MAX_NPROBE_WIDENING: f64 = 8.0;
/// A payload graph serves a filtered search only when at least this fraction of its rows
/// pass the search's row mask.
pub const PAYLOAD_GRAPH_MIN_PASS: f64 = 0.5;
/// What a distance computed during a graph walk costs, in distances computed by a scan
/// (random reads, heap upkeep, visited set): measured ~4 on 2,000 clustered 128-d rows
/// (889 distances in 33 µs at ef 64 vs 2,000 scanned in 18 µs).
pub const GRAPH_DISTANCE_COST: f64 = 4.0;
/// Rows sampled per segment to estimate a filter's selectivity.
const SELECTIVITY_SAMPLE: usize = 256;

impl SearchRequest {
    /// A plain top-`k` request.
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        SearchRequest {
            vector,
            k,
            ..Default::default()
        }
    }
}

/// What a row must satisfy to be returned, besides being live: the request's payload
/// filter, and for as-of searches being the version current at that time.
#[derive(Debug, Clone, Copy)]
struct RowRule<'a> {
    filter: Option<&'a Filter>,
    as_of: Option<i64>,
}

impl<'a> RowRule<'a> {
    fn of(request: &'a SearchRequest) -> Self {
        RowRule {
            filter: request.filter.as_ref(),
            as_of: request.as_of,
        }
    }
}

/// Which rows of a segment a search may return.
#[derive(Debug)]
enum RowMask {
    /// Every row (no filter, no deletions).
    All,
    /// Exactly these rows (filter answered by the payload index, deletions removed).
    Set(RowSet),
    /// The rows of the segment graph's payload graph for the request's equality filter
    /// (exactly the rows holding the value), less deleted ones: no row set is built.
    Value(Arc<SegmentIndex>),
    /// Judge each row: not deleted and its payload passes the filter.
    PerRow,
    /// The rows of this set (the filter answered by the payload index) that pass the
    /// rest of the rule row by row: as-of searches of a sealed segment, whose version
    /// times are judged per row but whose payloads need not be decoded.
    SetThenRow(RowSet),
}

/// The unit of parallel work: a contiguous range of rows of one segment scanned
/// exactly, or a whole indexed segment searched through its graph.
#[derive(Debug, Clone)]
pub(super) struct WorkUnit {
    /// Index into `State::sealed`, `sealed.len()` for the growing segment, `sealed.len()
    /// + 1` for the history (as-of searches only).
    pub segment: usize,
    pub rows: std::ops::Range<usize>,
    pub graph: bool,
}

/// What one thread runs of a search: a work unit, or a slice of a group's segments (see
/// `ivf_group`).
enum Job {
    Unit(usize),
    Slice(usize, std::ops::Range<usize>),
}

/// Segment index and row packed into a top-k key.
pub(super) fn pack(segment: usize, row: usize) -> u64 {
    ((segment as u64) << 32) | row as u64
}

fn unpack(key: u64, state: &State) -> Location {
    let segment = (key >> 32) as usize;
    let row = (key & 0xFFFF_FFFF) as u32;
    if segment == state.sealed.len() {
        Location::Growing { row }
    } else if segment == state.sealed.len() + 1 {
        Location::History { row }
    } else {
        Location::Sealed {
            segment: segment as u32,
            row,
        }
    }
}

impl Collection {
    fn validate_request(&self, request: &SearchRequest) -> Result<Vec<f32>> {
        if request.k == 0 || request.k > MAX_K {
            return Err(EngineError::invalid(
                "k",
                format!("must be between 1 and {MAX_K}, got {}", request.k),
            ));
        }
        if let Some(ef) = request.params.ef {
            if ef == 0 || ef > 65_536 {
                return Err(EngineError::invalid(
                    "ef",
                    format!("must be between 1 and 65536, got {ef}"),
                ));
            }
        }
        if let Some(nprobe) = request.params.nprobe {
            if nprobe == 0 || nprobe > 1 << 20 {
                return Err(EngineError::invalid(
                    "nprobe",
                    format!("must be between 1 and 1048576, got {nprobe}"),
                ));
            }
        }
        if request.as_of.is_some() && !self.config.history {
            return Err(EngineError::invalid(
                "as_of",
                format!(
                    "collection '{}' keeps no history (create it with history: true)",
                    self.config.name
                ),
            ));
        }
        let mut query = request.vector.clone();
        self.prepare_vector(&mut query, None)?;
        Ok(query)
    }

    /// The `k` nearest points to `request.vector`, best first: exact over the growing
    /// segment and unindexed segments, through the HNSW graph or inverted file of indexed
    /// ones (unless `params.exact`).
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let query = self.validate_request(request)?;
        let state = self.read_state();
        let top = self.search_state(&state, &query, request);
        Ok(self.materialise(&state, top, request))
    }

    /// Many searches at once, results in request order. Exact parts of unfiltered
    /// requests share one pass over the rows with a GEMM-style kernel; graph parts and
    /// filtered requests run query by query, in parallel.
    pub fn search_batch(&self, requests: &[SearchRequest]) -> Result<Vec<Vec<ScoredPoint>>> {
        let queries = requests
            .iter()
            .map(|r| self.validate_request(r))
            .collect::<Result<Vec<_>>>()?;
        let state = self.read_state();
        let (plain, other): (Vec<usize>, Vec<usize>) = (0..requests.len()).partition(|&i| {
            requests[i].filter.is_none()
                && requests[i].as_of.is_none()
                && requests[i].params == requests[0].params
        });
        let mut tops: Vec<Option<TopK>> = vec![None; requests.len()];
        if !plain.is_empty() {
            let flat: Vec<f32> = plain
                .iter()
                .flat_map(|&i| queries[i].iter().copied())
                .collect();
            let chosen: Vec<&SearchRequest> = plain.iter().map(|&i| &requests[i]).collect();
            for (slot, top) in plain.iter().zip(self.batch_state(&state, &flat, &chosen)) {
                tops[*slot] = Some(top);
            }
        }
        let rest: Vec<(usize, TopK)> = other
            .par_iter()
            .map(|&i| (i, self.search_state(&state, &queries[i], &requests[i])))
            .collect();
        for (i, top) in rest {
            tops[i] = Some(top);
        }
        Ok(tops
            .into_iter()
            .zip(requests)
            .map(|(top, request)| {
                self.materialise(&state, top.expect("every request searched"), request)
            })
            .collect())
    }

    /// Runs [`Collection::search`] on the rayon pool and resolves when done, so an async
    /// caller never blocks its executor thread. Cancel safety: dropping the future does
    /// not stop the search (it finishes and its result is discarded); nothing is written.
    pub fn search_async(
        self: &std::sync::Arc<Self>,
        request: SearchRequest,
    ) -> impl std::future::Future<Output = Result<Vec<ScoredPoint>>> + Send + 'static {
        let (tx, rx) = futures_channel::oneshot::channel();
        let this = self.clone();
        rayon::spawn(move || {
            let _ = tx.send(this.search(&request));
        });
        async move {
            rx.await.unwrap_or_else(|_| {
                Err(EngineError::invalid(
                    "search",
                    "the search task was dropped",
                ))
            })
        }
    }

    /// Splits the state into work units. Indexed sealed segments are one graph unit each
    /// (unless `exact`); everything else is cut into row ranges.
    fn work_units(&self, state: &State, exact: bool, as_of: bool) -> Vec<WorkUnit> {
        let chunk = self.options.parallel_threshold.max(1024);
        let mut units = Vec::new();
        let history = match (&state.history, as_of) {
            (Some(h), true) => h.len(),
            _ => 0,
        };
        for segment in 0..=state.sealed.len() + 1 {
            let (len, indexed) = if segment == state.sealed.len() + 1 {
                (history, false)
            } else if segment == state.sealed.len() {
                (state.growing.len(), self.interim(state, segment).is_some())
            } else {
                let s = &state.sealed[segment].segment;
                (
                    s.len(),
                    s.index().is_some() || self.interim(state, segment).is_some(),
                )
            };
            if indexed && !exact {
                units.push(WorkUnit {
                    segment,
                    rows: 0..len,
                    graph: true,
                });
                continue;
            }
            let mut start = 0;
            while start < len {
                let end = (start + chunk).min(len);
                units.push(WorkUnit {
                    segment,
                    rows: start..end,
                    graph: false,
                });
                start = end;
            }
        }
        units
    }

    /// The partition searching `segment` until it is indexed (the growing segment, or a
    /// sealed one whose index is being built), under an IVF index config only.
    fn interim(&self, state: &State, segment: usize) -> Option<Arc<Partition>> {
        self.index_config().ivf()?;
        if segment == state.sealed.len() {
            state.growing.partition().cloned()
        } else {
            state.sealed.get(segment)?.segment.interim()
        }
    }

    pub(super) fn view<'a>(&self, state: &'a State, segment: usize) -> VectorView<'a> {
        let data = if segment == state.sealed.len() + 1 {
            state.history.as_ref().map_or(&[][..], |h| h.vectors())
        } else if segment == state.sealed.len() {
            state.growing.vectors()
        } else {
            state.sealed[segment].segment.vectors()
        };
        VectorView {
            data,
            dim: self.config.dimension,
            metric: self.config.metric,
        }
    }

    fn has_deletions(state: &State, segment: usize) -> bool {
        if segment == state.sealed.len() {
            state.growing.has_deletions()
        } else {
            !state.sealed[segment].deleted.is_empty()
        }
    }

    /// Whether row `row` of `segment` may be returned: for a plain search, live and
    /// passing the filter; for an as-of search, the version current at that time (a row
    /// deleted or replaced since still counts) and passing the filter.
    fn row_allowed(state: &State, segment: usize, row: u32, rule: RowRule<'_>) -> bool {
        let history = (segment == state.sealed.len() + 1).then_some(&state.history);
        let deleted = match history {
            Some(None) => return false,
            Some(Some(history)) => !rule.as_of.is_some_and(|t| history.visible_at(row, t)),
            None if segment == state.sealed.len() => state.growing.is_deleted(row),
            None => state.sealed[segment].deleted.contains(row),
        };
        if deleted {
            return false;
        }
        // Sealed rows' metadata is decoded from the file: only the parts a rule reads.
        let sealed = state.sealed.get(segment).map(|e| &e.segment);
        let meta = match (sealed, history) {
            (Some(_), _) => None,
            (None, Some(Some(history))) => Some(history.meta(row)),
            (None, _) => Some(state.growing.meta(row)),
        };
        // A row replaced or deleted after `t` is in the history too, with its end time:
        // judged there, so here only rows current now and already current at `t` pass.
        let current_at = rule.as_of.is_none_or(|t| {
            let updated_at = match (sealed, meta) {
                (Some(segment), _) => segment.times(row).1,
                (None, meta) => meta.map_or(i64::MAX, |m| m.updated_at),
            };
            updated_at <= t
        });
        current_at
            && rule.filter.is_none_or(|f| match (sealed, meta) {
                (Some(segment), _) => f.matches(&segment.payload(row)),
                (None, meta) => meta.is_some_and(|m| f.matches(&m.payload)),
            })
    }

    /// [`RowMask::SetThenRow`]'s test: `row` is in `set` (which answers the rule's filter)
    /// and passes the rest of the rule.
    fn set_row_allowed(
        state: &State,
        segment: usize,
        row: u32,
        set: &RowSet,
        rule: RowRule<'_>,
    ) -> bool {
        let unfiltered = RowRule {
            filter: None,
            ..rule
        };
        set.contains(row) && Self::row_allowed(state, segment, row, unfiltered)
    }

    /// Which rows of each segment a request may return: computed once per request and
    /// segment, before the work units run.
    fn masks(&self, state: &State, rule: RowRule<'_>, exact: bool) -> Vec<RowMask> {
        (0..=state.sealed.len() + 1)
            .map(|segment| {
                if segment == state.sealed.len() + 1 {
                    return RowMask::PerRow;
                }
                if rule.as_of.is_some() {
                    let indexed = rule
                        .filter
                        .zip(state.sealed.get(segment))
                        .and_then(|(f, entry)| entry.segment.payload_index().eval(f));
                    return indexed.map_or(RowMask::PerRow, RowMask::SetThenRow);
                }
                let deletions = Self::has_deletions(state, segment);
                match rule.filter {
                    None if !deletions => RowMask::All,
                    None => RowMask::PerRow,
                    Some(f) if segment < state.sealed.len() => {
                        let entry = &state.sealed[segment];
                        if let Some(index) = entry.segment.index().filter(|_| !exact) {
                            if value_graph(&index, f).is_some() {
                                return RowMask::Value(index);
                            }
                        }
                        match entry.segment.payload_index().eval(f) {
                            Some(mut set) => {
                                for row in entry.deleted.rows() {
                                    set.remove(row);
                                }
                                RowMask::Set(set)
                            }
                            None => RowMask::PerRow,
                        }
                    }
                    // The growing segment has no payload index: row by row.
                    Some(_) => RowMask::PerRow,
                }
            })
            .collect()
    }

    /// Fraction of a unit's rows the mask admits: exact for a row set, from an evenly
    /// spaced sample when rows are judged one by one.
    fn selectivity(state: &State, unit: &WorkUnit, mask: &RowMask, rule: RowRule<'_>) -> f64 {
        let len = unit.rows.len();
        match mask {
            _ if len == 0 => 0.0,
            RowMask::All => 1.0,
            RowMask::Set(set) => set.count() as f64 / len as f64,
            RowMask::Value(index) => {
                let rows = rule
                    .filter
                    .and_then(|f| value_graph(index, f))
                    .map_or(0, |g| g.len());
                rows as f64 / len as f64
            }
            // Judged row by row: an evenly spaced sample (for an as-of search the version
            // times matter as much as the filter, so the set's size alone would overstate).
            RowMask::PerRow | RowMask::SetThenRow(_) => {
                let step = (len / SELECTIVITY_SAMPLE).max(1);
                let sampled: Vec<u32> = (unit.rows.start..unit.rows.end)
                    .step_by(step)
                    .map(|r| r as u32)
                    .collect();
                let passed = sampled
                    .iter()
                    .filter(|&&r| match mask {
                        RowMask::SetThenRow(set) => {
                            Self::set_row_allowed(state, unit.segment, r, set, rule)
                        }
                        _ => Self::row_allowed(state, unit.segment, r, rule),
                    })
                    .count();
                passed as f64 / sampled.len() as f64
            }
        }
    }

    /// Searches one unit for one query.
    fn search_unit(
        &self,
        state: &State,
        unit: &WorkUnit,
        query: &[f32],
        request: &SearchRequest,
        mask: &RowMask,
        top: &mut TopK,
    ) {
        let rule = RowRule::of(request);
        let view = self.view(state, unit.segment);
        let key_base = pack(unit.segment, 0);
        let restricted = !matches!(mask, RowMask::All);
        if let (RowMask::Value(index), Some(filter), true) = (mask, rule.filter, unit.graph) {
            if let (SegmentIndex::Graph(graph), Some(value)) =
                (&**index, value_graph(index, filter))
            {
                let deleted = &state.sealed[unit.segment].deleted;
                let live = |row: u32| !deleted.contains(row);
                // Without deletions every row of the value passes: no per-row check.
                let (matches, accept) = if deleted.is_empty() {
                    (value.len(), None)
                } else {
                    let live: &(dyn Fn(u32) -> bool + Sync) = &live;
                    (
                        value.rows().iter().filter(|&&r| live(r)).count(),
                        Some(live),
                    )
                };
                let served = self.search_payload_graph(
                    graph,
                    value,
                    view,
                    query,
                    request,
                    matches as f64,
                    accept,
                    top,
                    key_base,
                );
                if !served {
                    // Most of the value's rows are deleted: score the live ones exactly.
                    let rows: Vec<u32> =
                        value.rows().iter().copied().filter(|&r| live(r)).collect();
                    FlatIndex::scan_rows(view, query, &rows, key_base, top);
                }
                return;
            }
        }
        let value_rows = match mask {
            RowMask::Value(index) => rule
                .filter
                .and_then(|f| value_graph(index, f))
                .map_or(&[][..], PayloadGraph::rows),
            _ => &[],
        };
        let allow = |row: u32| match mask {
            RowMask::All => true,
            RowMask::Set(set) => set.contains(row),
            RowMask::Value(_) => {
                value_rows.binary_search(&row).is_ok()
                    && !state.sealed[unit.segment].deleted.contains(row)
            }
            RowMask::PerRow => Self::row_allowed(state, unit.segment, row, rule),
            RowMask::SetThenRow(set) => Self::set_row_allowed(state, unit.segment, row, set, rule),
        };
        // A graph unit whose index was dropped meanwhile (the collection switched to
        // `flat`) is scanned exactly like any other: its rows are the whole segment.
        let index = match state.sealed.get(unit.segment) {
            Some(entry) if unit.graph => entry.segment.index(),
            _ => None,
        };
        let interim = match index {
            None if unit.graph => self.interim(state, unit.segment),
            _ => None,
        };
        if index.is_some() || interim.is_some() {
            // `None`: every row may be returned. A sampled estimate can read 1.0 while a
            // few rows are still excluded (a deletion the sample missed), so whether the
            // search is restricted never depends on the estimate.
            let selectivity = restricted.then(|| Self::selectivity(state, unit, mask, rule));
            let used_index = match (index.as_deref(), &interim) {
                (Some(SegmentIndex::Graph(graph)), _) => self.search_graph(
                    graph,
                    view,
                    query,
                    request,
                    selectivity,
                    &allow,
                    top,
                    key_base,
                ),
                (Some(SegmentIndex::Ivf(ivf)), _) => self.search_ivf(
                    ivf,
                    view,
                    query,
                    request,
                    selectivity,
                    &allow,
                    top,
                    key_base,
                ),
                (None, Some(partition)) => self.search_partition(
                    partition,
                    view,
                    query,
                    request,
                    selectivity,
                    &allow,
                    top,
                    key_base,
                ),
                (None, None) => false,
            };
            if used_index {
                return;
            }
            // Few rows match: score exactly those.
            let rows: Vec<u32> = match mask {
                RowMask::Set(set) => set.iter().collect(),
                RowMask::SetThenRow(set) => set.iter().filter(|&r| allow(r)).collect(),
                _ => (0..view.len() as u32).filter(|&r| allow(r)).collect(),
            };
            FlatIndex::scan_rows(view, query, &rows, key_base, top);
            return;
        }
        if restricted {
            FlatIndex::scan_range(view, query, unit.rows.clone(), Some(&allow), key_base, top);
        } else {
            FlatIndex::scan_range(view, query, unit.rows.clone(), None, key_base, top);
        }
    }

    /// Searches an HNSW unit, unless the filter is so selective that scanning its matches
    /// is cheaper (then returns `false` and does nothing).
    #[allow(clippy::too_many_arguments)]
    fn search_graph(
        &self,
        index: &SegmentGraph,
        view: VectorView<'_>,
        query: &[f32],
        request: &SearchRequest,
        selectivity: Option<f64>,
        allow: &(dyn Fn(u32) -> bool + Sync),
        top: &mut TopK,
        key_base: u64,
    ) -> bool {
        let restricted = selectivity.is_some();
        let selectivity = selectivity.unwrap_or(1.0);
        let ef = self.ef_for(index, request);
        if restricted {
            if let Some(value) = request
                .filter
                .as_ref()
                .and_then(|f| index.payload.for_filter(f))
            {
                let matches = selectivity * view.len() as f64;
                if self.search_payload_graph(
                    index,
                    value,
                    view,
                    query,
                    request,
                    matches,
                    Some(allow),
                    top,
                    key_base,
                ) {
                    return true;
                }
            }
        }
        let ef = if restricted {
            // Cost model: scanning the matches costs ~2 distance computations per match
            // (scattered rows); the filtered graph search ~ef·2m/selectivity.
            let matches = selectivity * view.len() as f64;
            let graph_cost = ef as f64 * 2.0 * index.hnsw.params().m as f64 / selectivity.max(1e-9);
            if selectivity < EXACT_SELECTIVITY || graph_cost >= 2.0 * matches {
                return false;
            }
            (ef as f64 / selectivity.max(1e-9)).min(ef as f64 * MAX_EF_WIDENING) as usize
        } else {
            ef
        };
        let hits = match &index.encoded {
            Some(encoded) => {
                let rerank = match self.index_config() {
                    IndexConfig::Hnsw(h) | IndexConfig::Auto(h) => h.rerank,
                    _ => 1,
                };
                paradox_index::search_encoded(
                    &index.hnsw,
                    encoded,
                    view,
                    query,
                    request.k,
                    ef,
                    rerank,
                    restricted.then_some(allow),
                )
            }
            None => {
                let params = paradox_index::SearchParams {
                    ef: Some(ef),
                    nprobe: None,
                    ..Default::default()
                };
                index
                    .hnsw
                    .search(view, query, request.k, restricted.then_some(allow), &params)
            }
        };
        for hit in hits {
            top.push(key_base + hit.key, hit.distance);
        }
        true
    }

    /// Searches through `value`, the payload graph of a value the filter requires, when
    /// most of its rows pass (`matches` of them; deletions and the rest of a conjunction
    /// take few): walks it when the walk (~ef·m distances, each costing about
    /// [`GRAPH_DISTANCE_COST`] scanned ones) is cheaper than scanning the matches, else
    /// scans its codes. Returns `false`, doing nothing, when too few rows pass.
    #[allow(clippy::too_many_arguments)]
    fn search_payload_graph(
        &self,
        index: &SegmentGraph,
        value: &PayloadGraph,
        view: VectorView<'_>,
        query: &[f32],
        request: &SearchRequest,
        matches: f64,
        accept: Option<&(dyn Fn(u32) -> bool + Sync)>,
        top: &mut TopK,
        key_base: u64,
    ) -> bool {
        if matches < PAYLOAD_GRAPH_MIN_PASS * value.len() as f64 {
            return false;
        }
        let ef = self.ef_for(index, request);
        let walk = GRAPH_DISTANCE_COST * (ef * index.hnsw.params().m) as f64 <= matches;
        let hits = if walk {
            value.search(view, query, request.k, ef, accept)
        } else {
            value.scan(view, query, request.k, accept)
        };
        for hit in hits {
            top.push(key_base + hit.key, hit.distance);
        }
        true
    }

    /// The beam width of a graph search: the request's, else the collection's.
    fn ef_for(&self, index: &SegmentGraph, request: &SearchRequest) -> usize {
        let default_ef = match self.index_config() {
            IndexConfig::Hnsw(h) | IndexConfig::Auto(h) => h.ef_search,
            _ => index.hnsw.params().ef_search,
        };
        request.params.ef.unwrap_or(default_ef).max(request.k)
    }

    /// Searches an IVF unit, unless the filter is so selective that scanning its matches
    /// is cheaper (then returns `false` and does nothing). A filter widens `nprobe` by
    /// 1/selectivity (at most [`MAX_NPROBE_WIDENING`]×) so the lists visited still hold
    /// about as many matching rows as an unfiltered search sees.
    #[allow(clippy::too_many_arguments)]
    fn search_ivf(
        &self,
        index: &IvfIndex,
        view: VectorView<'_>,
        query: &[f32],
        request: &SearchRequest,
        selectivity: Option<f64>,
        allow: &(dyn Fn(u32) -> bool + Sync),
        top: &mut TopK,
        key_base: u64,
    ) -> bool {
        let restricted = selectivity.is_some();
        let mut params = self.ivf_params(index, request);
        // A visited row costs about a quarter of an exact distance when coded.
        let per_row = if index.code_bytes() == 0 { 1.0 } else { 0.25 };
        let nprobe = params.nprobe.unwrap_or(1);
        let Some(nprobe) = filtered_nprobe(nprobe, index.nlist(), view.len(), selectivity, per_row)
        else {
            return false;
        };
        params.nprobe = Some(nprobe);
        let hits = index.search(view, query, request.k, restricted.then_some(allow), &params);
        for hit in hits {
            top.push(key_base + hit.key, hit.distance);
        }
        true
    }

    /// Searches a segment not indexed yet through its partition: scores exactly the rows
    /// of the lists an IVF search would visit (widened for a filter like
    /// [`Self::search_ivf`]) and the unassigned rows. Returns `false`, doing nothing, when
    /// the filter is so selective that scanning its matches is cheaper.
    #[allow(clippy::too_many_arguments)]
    fn search_partition(
        &self,
        partition: &Partition,
        view: VectorView<'_>,
        query: &[f32],
        request: &SearchRequest,
        selectivity: Option<f64>,
        allow: &(dyn Fn(u32) -> bool + Sync),
        top: &mut TopK,
        key_base: u64,
    ) -> bool {
        let nprobe = self.ivf_params(partition.quantisers(), request).nprobe;
        let listed = view.len().saturating_sub(partition.unassigned());
        let Some(nprobe) = filtered_nprobe(
            nprobe.unwrap_or(1),
            partition.nlist(),
            listed,
            selectivity,
            1.0,
        ) else {
            return false;
        };
        let mut rows = partition.candidates(query, nprobe, view.len());
        if selectivity.is_some() {
            rows.retain(|&row| allow(row));
        }
        FlatIndex::scan_rows(view, query, &rows, key_base, top);
        true
    }

    /// An unfiltered request's IVF settings: its `nprobe`, else the collection's, and
    /// the collection's re-rank factor.
    pub(super) fn ivf_params(
        &self,
        index: &IvfIndex,
        request: &SearchRequest,
    ) -> paradox_index::SearchParams {
        let config = self.index_config().ivf();
        let nprobe = request
            .params
            .nprobe
            .or(config.map(|c| c.nprobe))
            .unwrap_or(index.params().nprobe)
            .max(1);
        paradox_index::SearchParams {
            nprobe: Some(nprobe),
            rerank: config.map(|c| c.rerank),
            ..Default::default()
        }
    }

    fn search_state(&self, state: &State, query: &[f32], request: &SearchRequest) -> TopK {
        let k = request.k;
        let units = self.work_units(state, request.params.exact, request.as_of.is_some());
        let masks = self.masks(state, RowRule::of(request), request.params.exact);
        let total: usize = units.iter().map(|u| u.rows.len()).sum();
        let serial = total <= self.options.parallel_threshold || units.len() == 1;
        let threads = if serial {
            1
        } else {
            rayon::current_num_threads()
        };
        // Sealed IVF segments with the same quantisers go as groups (`ivf_group`), each
        // cut into slices of its segments, one per thread; every other unit on its own.
        let plain = request.filter.is_none() && request.as_of.is_none() && !request.params.exact;
        let members = self.group_members(state, &units, plain);
        let groups = self.groups(state, &members, query, request, threads);
        let mut grouped = vec![false; units.len()];
        for (replaced, _) in &groups {
            for &unit in replaced {
                grouped[unit] = true;
            }
        }
        let mut jobs: Vec<(Job, usize)> = (0..units.len())
            .filter(|&i| !grouped[i])
            .map(|i| (Job::Unit(i), units[i].rows.len()))
            .collect();
        for (g, (_, group)) in groups.iter().enumerate() {
            for slice in &group.slices {
                jobs.push((Job::Slice(g, slice.clone()), group.rows(slice.clone())));
            }
        }
        // Largest first, so that whoever finishes last finishes a small job.
        jobs.sort_by_key(|&(_, rows)| std::cmp::Reverse(rows));
        // A unit's top k, or a slice's pools (one per part of its group).
        let run = |job: &Job| match job {
            Job::Unit(i) => {
                let unit = &units[*i];
                let mut top = TopK::new(k);
                self.search_unit(state, unit, query, request, &masks[unit.segment], &mut top);
                vec![top]
            }
            Job::Slice(g, slice) => groups[*g].1.scan(query, slice.clone(), k),
        };
        let tops: Vec<OnceLock<Vec<TopK>>> = jobs.iter().map(|_| OnceLock::new()).collect();
        if serial {
            for (i, (job, _)) in jobs.iter().enumerate() {
                let _ = tops[i].set(run(job));
            }
        } else {
            // The caller works through the jobs itself and free pool workers join in
            // (`helped`): under load a hand-off to the pool waited on wake-ups.
            helped::run(jobs.len(), threads.saturating_sub(1), &|i| {
                // Each index runs once, so its cell is empty.
                let _ = tops[i].set(run(&jobs[i].0));
            });
        }
        let mut top = TopK::new(k);
        let mut slices: Vec<Vec<Vec<TopK>>> = groups.iter().map(|_| Vec::new()).collect();
        for ((job, _), cell) in jobs.iter().zip(tops) {
            let Some(found) = cell.into_inner() else {
                continue;
            };
            match job {
                Job::Unit(_) => found.into_iter().for_each(|t| top.merge(t)),
                Job::Slice(g, _) => slices[*g].push(found),
            }
        }
        for ((_, group), slices) in groups.iter().zip(slices) {
            for hit in group.finish(query, slices, k) {
                top.push(hit.key, hit.distance);
            }
        }
        top
    }

    /// Top-k for many unfiltered queries sharing the same params: exact row ranges go
    /// through the GEMM-style kernel in one pass, graph units query by query.
    fn batch_state(
        &self,
        state: &State,
        queries: &[f32],
        requests: &[&SearchRequest],
    ) -> Vec<TopK> {
        let fresh = || requests.iter().map(|r| TopK::new(r.k)).collect::<Vec<_>>();
        let exact = requests.first().is_some_and(|r| r.params.exact);
        let units = self.work_units(state, exact, false);
        let masks = self.masks(
            state,
            RowRule {
                filter: None,
                as_of: None,
            },
            exact,
        );
        let dim = self.config.dimension;
        let run = |unit: &WorkUnit| {
            let mask = &masks[unit.segment];
            if let (Some(entry), true, RowMask::All) =
                (state.sealed.get(unit.segment), unit.graph, mask)
            {
                let index = entry.segment.index();
                if let Some(SegmentIndex::Ivf(ivf)) = index.as_deref() {
                    return self.ivf_batch(ivf, state, unit.segment, queries, requests);
                }
            }
            if unit.graph || !matches!(mask, RowMask::All) {
                // One query at a time through the index (or the mask), the queries spread
                // over the pool: an indexed segment is a single unit, so parallelism must
                // come from the batch.
                return queries
                    .par_chunks_exact(dim)
                    .zip(requests.par_iter())
                    .map(|(q, request)| {
                        let mut top = TopK::new(request.k);
                        self.search_unit(state, unit, q, request, mask, &mut top);
                        top
                    })
                    .collect();
            }
            let mut tops = fresh();
            FlatIndex::scan_range_batch(
                self.view(state, unit.segment),
                queries,
                unit.rows.clone(),
                pack(unit.segment, 0),
                &mut tops,
            );
            tops
        };
        let merge = |mut a: Vec<TopK>, b: Vec<TopK>| {
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
            a
        };
        units.par_iter().map(run).reduce(fresh, merge)
    }

    /// Unfiltered searches of one IVF segment, grouped by list (each list read once per
    /// group of queries); requests with the same `k` go together, so each gets the
    /// re-rank pool a search of its own would.
    fn ivf_batch(
        &self,
        ivf: &IvfIndex,
        state: &State,
        segment: usize,
        queries: &[f32],
        requests: &[&SearchRequest],
    ) -> Vec<TopK> {
        let dim = self.config.dimension;
        let view = self.view(state, segment);
        let key_base = pack(segment, 0);
        let params = self.ivf_params(ivf, requests[0]);
        let mut tops: Vec<TopK> = requests.iter().map(|r| TopK::new(r.k)).collect();
        let mut ks: Vec<usize> = requests.iter().map(|r| r.k).collect();
        ks.sort_unstable();
        ks.dedup();
        for k in ks {
            let chosen: Vec<usize> = (0..requests.len())
                .filter(|&i| requests[i].k == k)
                .collect();
            let group: Vec<f32> = chosen
                .iter()
                .flat_map(|&i| queries[i * dim..(i + 1) * dim].iter().copied())
                .collect();
            for (&i, hits) in chosen
                .iter()
                .zip(ivf.search_batch(view, &group, k, &params))
            {
                for hit in hits {
                    tops[i].push(key_base + hit.key, hit.distance);
                }
            }
        }
        tops
    }

    fn materialise(&self, state: &State, top: TopK, request: &SearchRequest) -> Vec<ScoredPoint> {
        let hits = top.into_sorted_vec();
        let locations: Vec<Location> = hits.iter().map(|n| unpack(n.key, state)).collect();
        state.prefetch_metas(&locations);
        hits.into_iter()
            .zip(locations)
            .map(|(n, loc)| {
                let (id, payload) = if request.with_payload {
                    let meta = state.meta(loc);
                    (meta.id.clone(), Some(meta.payload.to_payload()))
                } else {
                    (state.id(loc), None)
                };
                ScoredPoint {
                    id,
                    score: self.config.metric.score_from_distance(n.distance),
                    payload,
                    vector: request.with_vector.then(|| state.vector(loc).to_vec()),
                }
            })
            .collect()
    }
}

/// The lists an IVF search of `rows` rows in `nlist` lists visits: `nprobe` unfiltered;
/// with a filter passing `selectivity` of the rows, `nprobe` widened by 1/selectivity (at
/// most [`MAX_NPROBE_WIDENING`]×) so the lists still hold about as many matching rows as
/// an unfiltered search sees. `None` when scanning the matches exactly is cheaper (cost
/// model: `per_row` exact distances per visited row, ~2 per scattered match).
fn filtered_nprobe(
    nprobe: usize,
    nlist: usize,
    rows: usize,
    selectivity: Option<f64>,
    per_row: f64,
) -> Option<usize> {
    let Some(selectivity) = selectivity else {
        return Some(nprobe);
    };
    let widened = (nprobe as f64 / selectivity.max(1e-9))
        .min(nprobe as f64 * MAX_NPROBE_WIDENING)
        .min(nlist as f64) as usize;
    let cost = rows as f64 * widened as f64 / nlist.max(1) as f64 * per_row;
    let matches = selectivity * rows as f64;
    (selectivity >= EXACT_SELECTIVITY && cost < 2.0 * matches).then_some(widened)
}

/// The payload graph of `index` whose rows are exactly those `filter` matches, if any.
fn value_graph<'a>(index: &'a SegmentIndex, filter: &Filter) -> Option<&'a PayloadGraph> {
    match index {
        SegmentIndex::Graph(graph) => graph.payload.for_value(filter),
        SegmentIndex::Ivf(_) => None,
    }
}
