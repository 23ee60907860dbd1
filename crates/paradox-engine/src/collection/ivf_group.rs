//! Sealed IVF segments with the same quantisers searched as one (see
//! [`paradox_index::GroupPart`]): one probe and one table per visited list for all of
//! them, instead of one each; each keeps its own `rerank × k` candidates, so the results
//! are those of searching them one by one. A collection indexes its segments with the
//! quantisers of its last training, so under an insert stream, which seals a small
//! segment every `seal_threshold` rows, most of a search's segments qualify; searched one
//! by one, their fixed costs were most of what the stream added to a query.
//!
//! Only plain searches group (no filter, no as-of time, not exact), and only segments
//! with few deletions: a deletion is skipped like a filtered row, but a segment with many
//! would need a wider probe (see `Collection::search_ivf`), so it is searched on its own.

use super::search::{pack, WorkUnit};
use super::state::State;
use super::Collection;
use crate::segment::SegmentIndex;
use paradox_index::{GroupPart, IvfIndex, Neighbor, SearchParams, TopK};
use std::ops::Range;
use std::sync::Arc;

/// Most deleted rows, as a fraction of its rows, for a segment to be searched in a group.
const MAX_GROUPED_DELETED: f64 = 0.1;

/// A sealed IVF segment a search groups: its unit, its index (held for the search) and,
/// when it has deletions, the test of live rows.
pub(super) struct Member<'s> {
    pub unit: usize,
    segment: usize,
    index: Arc<SegmentIndex>,
    live: Option<Box<dyn Fn(u32) -> bool + Sync + 's>>,
}

impl Member<'_> {
    fn ivf(&self) -> &IvfIndex {
        match &*self.index {
            SegmentIndex::Ivf(ivf) => ivf,
            SegmentIndex::Graph(_) => unreachable!("members are IVF segments"),
        }
    }
}

/// Segments searched as one, the lists they visit and how those are cut into jobs.
pub(super) struct Group<'m> {
    parts: Vec<GroupPart<'m>>,
    params: SearchParams,
    lists: Vec<Neighbor>,
    /// Slices of `parts` (about equal in rows), one job each: a job scans every visited
    /// list of its parts, each list's table made once for them.
    pub slices: Vec<Range<usize>>,
}

impl<'m> Group<'m> {
    /// Rows of the parts of `slice` (for ordering jobs by size).
    pub fn rows(&self, slice: Range<usize>) -> usize {
        self.parts[slice].iter().map(|p| p.vectors.len()).sum()
    }

    /// Scores every visited list of the parts of `slice` into fresh pools, one per part.
    pub fn scan(&self, query: &[f32], slice: Range<usize>, k: usize) -> Vec<TopK> {
        let parts = &self.parts[slice];
        let index = parts[0].index;
        let size = index.group_pool(k, &self.params);
        let mut pools: Vec<TopK> = parts.iter().map(|_| TopK::new(size)).collect();
        index.scan_group(parts, query, &self.lists, &self.params, &mut pools);
        pools
    }

    /// The best `k` of the parts' pools (every slice's from [`Self::scan`], in any
    /// order), re-ranked.
    pub fn finish(&self, query: &[f32], slices: Vec<Vec<TopK>>, k: usize) -> Vec<Neighbor> {
        let candidates = slices
            .into_iter()
            .flatten()
            .flat_map(TopK::into_sorted_vec)
            .collect();
        self.parts[0]
            .index
            .rerank_group(&self.parts, query, candidates, k, &self.params)
    }
}

impl Collection {
    /// The sealed IVF segments of `units` a plain search may group (see the module docs).
    pub(super) fn group_members<'s>(
        &self,
        state: &'s State,
        units: &[WorkUnit],
        plain: bool,
    ) -> Vec<Member<'s>> {
        if !plain || self.index_config().ivf().is_none() {
            return Vec::new();
        }
        units
            .iter()
            .enumerate()
            .filter(|(_, unit)| unit.graph && unit.segment < state.sealed.len())
            .filter_map(|(i, unit)| {
                let entry = &state.sealed[unit.segment];
                let index = entry.segment.index()?;
                if !matches!(&*index, SegmentIndex::Ivf(_)) {
                    return None;
                }
                let deleted = &entry.deleted;
                if deleted.len() as f64 > MAX_GROUPED_DELETED * entry.segment.len() as f64 {
                    return None;
                }
                let live = (!deleted.is_empty()).then(|| {
                    Box::new(move |row: u32| !deleted.contains(row))
                        as Box<dyn Fn(u32) -> bool + Sync + 's>
                });
                Some(Member {
                    unit: i,
                    segment: unit.segment,
                    index,
                    live,
                })
            })
            .collect()
    }

    /// Groups of two or more `members` with the same quantisers, probed for `query`, each
    /// cut into up to `jobs` slices of parts.
    pub(super) fn groups<'m>(
        &self,
        state: &'m State,
        members: &'m [Member<'_>],
        query: &[f32],
        request: &crate::SearchRequest,
        jobs: usize,
    ) -> Vec<(Vec<usize>, Group<'m>)> {
        let mut by_id: Vec<([u64; 2], Vec<usize>)> = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let id = member.ivf().quantisers_id();
            match by_id.iter_mut().find(|(other, _)| *other == id) {
                Some((_, list)) => list.push(i),
                None => by_id.push((id, vec![i])),
            }
        }
        by_id
            .into_iter()
            .filter(|(_, list)| list.len() >= 2)
            .map(|(_, list)| {
                let parts: Vec<GroupPart<'m>> = list
                    .iter()
                    .map(|&i| {
                        let member = &members[i];
                        GroupPart {
                            index: member.ivf(),
                            vectors: self.view(state, member.segment),
                            filter: member.live.as_deref().map(|f| f as _),
                            key_base: pack(member.segment, 0),
                        }
                    })
                    .collect();
                let first = parts[0].index;
                let params = self.ivf_params(first, request);
                let lists = first.probe_lists(query, &params);
                let slices = balanced(&parts, jobs);
                let units = list.iter().map(|&i| members[i].unit).collect();
                (
                    units,
                    Group {
                        parts,
                        params,
                        lists,
                        slices,
                    },
                )
            })
            .collect()
    }
}

/// `parts` cut into at most `jobs` contiguous slices of about equal rows.
fn balanced(parts: &[GroupPart<'_>], jobs: usize) -> Vec<Range<usize>> {
    let total: usize = parts.iter().map(|p| p.vectors.len()).sum();
    let target = total.div_ceil(jobs.max(1)).max(1);
    let mut slices = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (i, part) in parts.iter().enumerate() {
        rows += part.vectors.len();
        if rows >= target && slices.len() + 1 < jobs {
            slices.push(start..i + 1);
            (start, rows) = (i + 1, 0);
        }
    }
    if start < parts.len() {
        slices.push(start..parts.len());
    }
    slices
}
