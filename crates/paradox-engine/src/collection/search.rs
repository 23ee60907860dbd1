//! Exact search over every segment of a collection, with payload filters, batches and
//! parallelism across row ranges.
//!
//! A search holds the state's read lock for its duration: writers apply between searches,
//! never during one, so a search sees a consistent snapshot. Large collections are split
//! into work units of `parallel_threshold` rows, scanned on the rayon pool, and the
//! per-unit selections are merged.

use super::state::{Location, State};
use super::Collection;
use crate::config::MAX_K;
use crate::error::{EngineError, Result};
use crate::filter::Filter;
use crate::point::ScoredPoint;
use paradox_index::{FlatIndex, TopK, VectorView};
use rayon::prelude::*;
use serde::Deserialize;

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
}

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

/// A contiguous range of rows of one segment: the unit of parallel work.
#[derive(Debug, Clone)]
struct WorkUnit {
    /// Index into `State::sealed`, or `sealed.len()` for the growing segment.
    segment: usize,
    rows: std::ops::Range<usize>,
}

/// Segment index and row packed into a top-k key.
fn pack(segment: usize, row: usize) -> u64 {
    ((segment as u64) << 32) | row as u64
}

fn unpack(key: u64, state: &State) -> Location {
    let segment = (key >> 32) as usize;
    let row = (key & 0xFFFF_FFFF) as u32;
    if segment == state.sealed.len() {
        Location::Growing { row }
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
        let mut query = request.vector.clone();
        self.prepare_vector(&mut query, None)?;
        Ok(query)
    }

    /// The `k` nearest points to `request.vector` (exactly), best first.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        let query = self.validate_request(request)?;
        let state = self.state.read();
        let top = self.search_state(&state, &query, request.k, request.filter.as_ref());
        Ok(self.materialise(&state, top, request))
    }

    /// Many searches at once. Requests without a filter share one pass over the data with
    /// a GEMM-style kernel; filtered ones run one by one. Results are in request order.
    pub fn search_batch(&self, requests: &[SearchRequest]) -> Result<Vec<Vec<ScoredPoint>>> {
        let queries = requests
            .iter()
            .map(|r| self.validate_request(r))
            .collect::<Result<Vec<_>>>()?;
        let state = self.state.read();
        let (plain, filtered): (Vec<usize>, Vec<usize>) =
            (0..requests.len()).partition(|&i| requests[i].filter.is_none());
        let mut tops: Vec<Option<TopK>> = vec![None; requests.len()];
        if !plain.is_empty() {
            let flat: Vec<f32> = plain
                .iter()
                .flat_map(|&i| queries[i].iter().copied())
                .collect();
            let ks: Vec<usize> = plain.iter().map(|&i| requests[i].k).collect();
            for (slot, top) in plain.iter().zip(self.batch_state(&state, &flat, &ks)) {
                tops[*slot] = Some(top);
            }
        }
        for i in filtered {
            tops[i] = Some(self.search_state(
                &state,
                &queries[i],
                requests[i].k,
                requests[i].filter.as_ref(),
            ));
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

    fn work_units(&self, state: &State) -> Vec<WorkUnit> {
        let chunk = self.options.parallel_threshold.max(1024);
        let mut units = Vec::new();
        let lens = state
            .sealed
            .iter()
            .map(|e| e.segment.len())
            .chain(std::iter::once(state.growing.len()));
        for (segment, len) in lens.enumerate() {
            let mut start = 0;
            while start < len {
                let end = (start + chunk).min(len);
                units.push(WorkUnit {
                    segment,
                    rows: start..end,
                });
                start = end;
            }
        }
        units
    }

    fn view<'a>(&self, state: &'a State, segment: usize) -> VectorView<'a> {
        let data = if segment == state.sealed.len() {
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

    /// Scans one unit for one query.
    fn scan_unit(
        &self,
        state: &State,
        unit: &WorkUnit,
        query: &[f32],
        filter: Option<&Filter>,
        top: &mut TopK,
    ) {
        let view = self.view(state, unit.segment);
        let key_base = pack(unit.segment, 0);
        let growing = unit.segment == state.sealed.len();
        let has_deletions = if growing {
            state.growing.has_deletions()
        } else {
            !state.sealed[unit.segment].deleted.is_empty()
        };
        if filter.is_none() && !has_deletions {
            FlatIndex::scan_range(view, query, unit.rows.clone(), None, key_base, top);
            return;
        }
        let allow = |row: u32| -> bool {
            let (deleted, meta) = if growing {
                (state.growing.is_deleted(row), state.growing.meta(row))
            } else {
                let e = &state.sealed[unit.segment];
                (e.deleted.contains(row), e.segment.meta(row))
            };
            !deleted && filter.is_none_or(|f| f.matches(&meta.payload))
        };
        FlatIndex::scan_range(view, query, unit.rows.clone(), Some(&allow), key_base, top);
    }

    fn search_state(
        &self,
        state: &State,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
    ) -> TopK {
        let units = self.work_units(state);
        let total: usize = units.iter().map(|u| u.rows.len()).sum();
        if total <= self.options.parallel_threshold || units.len() == 1 {
            let mut top = TopK::new(k);
            for unit in &units {
                self.scan_unit(state, unit, query, filter, &mut top);
            }
            return top;
        }
        units
            .par_iter()
            .map(|unit| {
                let mut top = TopK::new(k);
                self.scan_unit(state, unit, query, filter, &mut top);
                top
            })
            .reduce(
                || TopK::new(k),
                |mut a, b| {
                    a.merge(b);
                    a
                },
            )
    }

    /// Exact top-k for many unfiltered queries in one pass over the rows.
    fn batch_state(&self, state: &State, queries: &[f32], ks: &[usize]) -> Vec<TopK> {
        let fresh = || ks.iter().map(|&k| TopK::new(k)).collect::<Vec<_>>();
        let units = self.work_units(state);
        let run = |unit: &WorkUnit| {
            let mut tops = fresh();
            let growing = unit.segment == state.sealed.len();
            let has_deletions = if growing {
                state.growing.has_deletions()
            } else {
                !state.sealed[unit.segment].deleted.is_empty()
            };
            if has_deletions {
                let dim = self.config.dimension;
                for (q, top) in queries.chunks_exact(dim).zip(tops.iter_mut()) {
                    self.scan_unit(state, unit, q, None, top);
                }
            } else {
                FlatIndex::scan_range_batch(
                    self.view(state, unit.segment),
                    queries,
                    unit.rows.clone(),
                    pack(unit.segment, 0),
                    &mut tops,
                );
            }
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

    fn materialise(&self, state: &State, top: TopK, request: &SearchRequest) -> Vec<ScoredPoint> {
        top.into_sorted_vec()
            .into_iter()
            .map(|n| {
                let loc = unpack(n.key, state);
                let meta = state.meta(loc);
                ScoredPoint {
                    id: meta.id.clone(),
                    score: self.config.metric.score_from_distance(n.distance),
                    payload: request.with_payload.then(|| meta.payload.clone()),
                    vector: request.with_vector.then(|| state.vector(loc).to_vec()),
                }
            })
            .collect()
    }
}
