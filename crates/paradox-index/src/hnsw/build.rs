//! Building the graph: insertion (algorithm 1 of the HNSW paper), the neighbour-selection
//! heuristic (algorithm 4), parallel construction, and link repair after deletions.

use super::graph::{Graph, MAX_LINKS, NONE};
use super::search::{greedy, search_layer, search_layer_all, NodeDistance, Scored, POOL_MAX_NODES};
use super::visited::with_visited;
use crate::VectorView;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Distance between stored rows and from a query to stored rows, under the index metric.
#[derive(Clone, Copy)]
pub(crate) struct Space<'a> {
    pub view: VectorView<'a>,
    pub kernel: fn(&[f32], &[f32]) -> f32,
    pub negate: bool,
}

impl std::fmt::Debug for Space<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Space")
            .field("rows", &self.view.len())
            .field("negate", &self.negate)
            .finish()
    }
}

impl<'a> Space<'a> {
    pub fn new(view: VectorView<'a>) -> Self {
        let table = paradox_kernels::kernel_table();
        match view.metric {
            paradox_kernels::Metric::L2 => Space {
                view,
                kernel: table.l2_squared,
                negate: false,
            },
            _ => Space {
                view,
                kernel: table.dot,
                negate: true,
            },
        }
    }

    #[inline]
    pub fn between(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = (self.kernel)(a, b);
        if self.negate {
            -d
        } else {
            d
        }
    }

    /// `nodes` with their distances to row `base`, in the order given.
    pub fn scored(&self, base: u32, nodes: &[u32]) -> Vec<Scored> {
        let dist = self.to(self.view.row(base as usize));
        let mut distances = [0f32; MAX_LINKS + 1];
        let mut out = Vec::with_capacity(nodes.len());
        for chunk in nodes.chunks(distances.len()) {
            dist.distances(chunk, &mut distances);
            out.extend(
                chunk
                    .iter()
                    .zip(&distances)
                    .map(|(&node, &distance)| Scored { distance, node }),
            );
        }
        out
    }

    pub fn to<'q>(&'q self, query: &'q [f32]) -> QueryDistance<'q, 'a> {
        QueryDistance { space: self, query }
    }
}

/// Distance from one query to any row.
pub(crate) struct QueryDistance<'q, 'a> {
    space: &'q Space<'a>,
    query: &'q [f32],
}

impl NodeDistance for QueryDistance<'_, '_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        self.space
            .between(self.query, self.space.view.row(node as usize))
    }

    fn distances(&self, nodes: &[u32], out: &mut [f32]) {
        let view = self.space.view;
        (view.metric).distances_gather(self.query, &view.data[..view.len() * view.dim], nodes, out);
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let row = self.space.view.row(node as usize);
            // SAFETY: prefetch is a hint; the pointer is in bounds of a live slice.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch(row.as_ptr().cast::<i8>(), _MM_HINT_T0);
                if row.len() > 16 {
                    _mm_prefetch(row.as_ptr().add(16).cast::<i8>(), _MM_HINT_T0);
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = node;
    }
}

/// Algorithm 4 of the paper ("heuristic"): walk candidates from nearest to farthest and
/// keep one only if it is closer to the base node than to every neighbour kept so far.
/// This spreads links over directions and keeps the graph navigable across clusters.
pub(crate) fn select_neighbors(space: &Space<'_>, sorted: &[Scored], m: usize, out: &mut Vec<u32>) {
    out.clear();
    if sorted.len() <= m {
        out.extend(sorted.iter().map(|s| s.node));
        return;
    }
    for candidate in sorted {
        if out.len() >= m {
            break;
        }
        let row = space.view.row(candidate.node as usize);
        let dominated = out
            .iter()
            .any(|&kept| space.between(row, space.view.row(kept as usize)) < candidate.distance);
        if !dominated {
            out.push(candidate.node);
        }
    }
}

/// Adds `new` to the links of `node` at `level`, pruning with the heuristic when full.
fn link_back(graph: &Graph, space: &Space<'_>, node: u32, new: u32, level: usize) {
    let _guard = graph.locks[node as usize].lock();
    let mut links = [0u32; MAX_LINKS];
    let count = graph.read_links(node, level, &mut links);
    if links[..count].contains(&new) {
        return;
    }
    let cap = graph.capacity(level);
    if count < cap {
        links[count] = new;
        graph.write_links(node, level, &links[..count + 1]);
        return;
    }
    let mut all = [0u32; MAX_LINKS + 1];
    all[..count].copy_from_slice(&links[..count]);
    all[count] = new;
    let mut candidates = space.scored(node, &all[..count + 1]);
    candidates.sort_unstable();
    let mut kept = Vec::with_capacity(cap);
    select_neighbors(space, &candidates, cap, &mut kept);
    graph.write_links(node, level, &kept);
}

/// Sets the links of a node being inserted. Concurrent insertions may already have
/// linked back to it (it becomes reachable through its upper levels before its lower
/// lists are written); overwriting would drop those edges, so they are merged in and the
/// union pruned with the heuristic when it exceeds the level's capacity.
fn set_own_links(graph: &Graph, space: &Space<'_>, q: u32, level: usize, selected: &[u32]) {
    let _guard = graph.locks[q as usize].lock();
    let mut existing = [0u32; MAX_LINKS];
    let count = graph.read_links(q, level, &mut existing);
    if count == 0 {
        graph.write_links(q, level, selected);
        return;
    }
    let mut merged: Vec<u32> = selected.to_vec();
    merged.extend(
        existing[..count]
            .iter()
            .copied()
            .filter(|n| !selected.contains(n)),
    );
    let cap = graph.capacity(level);
    if merged.len() <= cap {
        graph.write_links(q, level, &merged);
        return;
    }
    let mut candidates = space.scored(q, &merged);
    candidates.sort_unstable();
    let mut kept = Vec::with_capacity(cap);
    select_neighbors(space, &candidates, cap, &mut kept);
    graph.write_links(q, level, &kept);
}

/// Inserts node `q` (its level is already recorded in the graph). Safe to call from many
/// threads at once for different nodes.
pub(crate) fn insert(graph: &Graph, space: &Space<'_>, q: u32, ef_construction: usize) {
    let level = graph.levels[q as usize] as usize;
    // A node that may become the new top holds the entry lock for its whole insertion, so
    // two such nodes do not race to replace the entry point.
    let mut top_guard = None;
    if level as u32 > graph.max_level.load(Acquire) || graph.entry.load(Acquire) == NONE {
        top_guard = Some(graph.entry_lock.lock());
    }
    let entry = graph.entry.load(Acquire);
    let max_level = graph.max_level.load(Acquire) as usize;
    if entry == NONE {
        graph.max_level.store(level as u32, Release);
        graph.entry.store(q, Release);
        return;
    }
    if top_guard.is_some() && level <= max_level {
        top_guard = None;
    }
    let query = space.view.row(q as usize);
    let dist = space.to(query);
    let mut current = Scored {
        distance: dist.distance(entry),
        node: entry,
    };
    for l in (level + 1..=max_level).rev() {
        current = greedy(graph, &dist, current, l);
    }
    let mut entries = vec![current];
    let mut selected = Vec::with_capacity(graph.m0);
    for l in (0..=level.min(max_level)).rev() {
        let sorted = with_visited(graph.len(), |visited| {
            if graph.len() < POOL_MAX_NODES {
                // Concurrent insertions may already link to `q`: marking it visited keeps
                // it out of its own candidates.
                visited.insert(q);
                search_layer_all(graph, &dist, &entries, ef_construction, l, visited)
            } else {
                search_layer(graph, &dist, &entries, ef_construction, l, visited, &|n| {
                    n != q
                })
                .into_sorted_vec()
            }
        });
        select_neighbors(space, &sorted, graph.m, &mut selected);
        set_own_links(graph, space, q, l, &selected);
        for &n in &selected {
            link_back(graph, space, n, q, l);
        }
        if !sorted.is_empty() {
            entries = sorted;
        }
    }
    if level > max_level {
        graph.max_level.store(level as u32, Release);
        graph.entry.store(q, Release);
    }
    drop(top_guard);
}

/// Reconnects every live node that links to a deleted one: its new candidates are its
/// live links plus the live links of its deleted neighbours, pruned by the heuristic.
/// Afterwards no live node links to a deleted node, and the entry point is live.
pub(crate) fn repair(
    graph: &Graph,
    space: &Space<'_>,
    is_deleted: &(impl Fn(u32) -> bool + Sync),
    ef_construction: usize,
) {
    use rayon::prelude::*;
    (0..graph.len() as u32)
        .into_par_iter()
        .filter(|&u| !is_deleted(u))
        .for_each(|u| {
            let base = space.view.row(u as usize);
            for level in 0..=graph.levels[u as usize] as usize {
                let mut links = [0u32; MAX_LINKS];
                let count = graph.read_links(u, level, &mut links);
                if !links[..count].iter().any(|&n| is_deleted(n)) {
                    continue;
                }
                let mut pool: Vec<u32> = Vec::with_capacity(count * 4);
                let mut second = [0u32; MAX_LINKS];
                for &n in &links[..count] {
                    if is_deleted(n) {
                        let c2 = graph.read_links(n, level, &mut second);
                        pool.extend(
                            second[..c2]
                                .iter()
                                .copied()
                                .filter(|&x| x != u && !is_deleted(x)),
                        );
                    } else {
                        pool.push(n);
                    }
                }
                if level == 0 {
                    // The 2-hop pool sees only what the deleted neighbours saw; a short
                    // search from the node's own position adds what an insertion would.
                    let ef = ef_construction;
                    pool.extend(local_candidates(graph, space, u, is_deleted, ef));
                }
                pool.sort_unstable();
                pool.dedup();
                let mut candidates: Vec<Scored> = pool
                    .into_iter()
                    .map(|n| Scored {
                        distance: space.between(base, space.view.row(n as usize)),
                        node: n,
                    })
                    .collect();
                candidates.sort_unstable();
                // Re-link the node as an insertion would: the heuristic picks `m` diverse
                // neighbours; reverse edges (below) fill lists up to their capacity.
                let mut kept = Vec::new();
                select_neighbors(space, &candidates, graph.m, &mut kept);
                {
                    let _guard = graph.locks[u as usize].lock();
                    graph.write_links(u, level, &kept);
                }
                // As in an insertion, new links get their reverse edge, so nodes that
                // were reachable only through deleted ones gain incoming links.
                for &v in &kept {
                    if !links[..count].contains(&v) {
                        link_back(graph, space, v, u, level);
                    }
                }
            }
        });
    // Deleted nodes keep no links: nothing can reach them, and they reach nothing.
    for d in (0..graph.len() as u32).filter(|&d| is_deleted(d)) {
        for level in 0..=graph.levels[d as usize] as usize {
            graph.write_links(d, level, &[]);
        }
    }
    elect_live_entry(graph, is_deleted);
    relink_weakly_reachable(graph, space, is_deleted, ef_construction);
}

/// Live nodes whose incoming links came mostly from deleted nodes can become hard or
/// impossible to reach. Each live node with fewer than `m / 2` incoming level-0 links is
/// searched for from the entry point and linked from its nearest live neighbours, as an
/// insertion would.
fn relink_weakly_reachable(
    graph: &Graph,
    space: &Space<'_>,
    is_deleted: &(impl Fn(u32) -> bool + Sync),
    ef_construction: usize,
) {
    use rayon::prelude::*;
    let n = graph.len();
    let incoming: Vec<std::sync::atomic::AtomicU32> = (0..n)
        .map(|_| std::sync::atomic::AtomicU32::new(0))
        .collect();
    (0..n as u32).into_par_iter().for_each(|u| {
        let mut links = [0u32; MAX_LINKS];
        let c = graph.read_links(u, 0, &mut links);
        for &l in &links[..c] {
            incoming[l as usize].fetch_add(1, Relaxed);
        }
    });
    let entry = graph.entry.load(Acquire);
    if entry == NONE {
        return;
    }
    let weak: Vec<u32> = (0..n as u32)
        .filter(|&u| {
            !is_deleted(u)
                && u != entry
                && (incoming[u as usize].load(Relaxed) as usize) < graph.m / 2
        })
        .collect();
    weak.par_iter().for_each(|&u| {
        let query = space.view.row(u as usize);
        let dist = space.to(query);
        let mut current = Scored {
            distance: dist.distance(entry),
            node: entry,
        };
        for l in (1..=graph.max_level.load(Acquire) as usize).rev() {
            current = greedy(graph, &dist, current, l);
        }
        let found = with_visited(graph.len(), |visited| {
            search_layer(
                graph,
                &dist,
                &[current],
                ef_construction,
                0,
                visited,
                &|x| x != u && !is_deleted(x),
            )
        });
        let sorted = found.into_sorted_vec();
        let mut selected = Vec::with_capacity(graph.m);
        select_neighbors(space, &sorted, graph.m, &mut selected);
        for &n in &selected {
            link_back(graph, space, n, u, 0);
        }
    });
}

/// Live nodes near `u` found by a level-0 beam search of width `ef` starting from u's own
/// live neighbours (falling back to the entry point).
fn local_candidates(
    graph: &Graph,
    space: &Space<'_>,
    u: u32,
    is_deleted: &(impl Fn(u32) -> bool + Sync),
    ef: usize,
) -> Vec<u32> {
    let query = space.view.row(u as usize);
    let dist = space.to(query);
    let mut links = [0u32; MAX_LINKS];
    let count = graph.read_links(u, 0, &mut links);
    let mut entries: Vec<Scored> = links[..count]
        .iter()
        .filter(|&&n| !is_deleted(n))
        .map(|&n| Scored {
            distance: dist.distance(n),
            node: n,
        })
        .collect();
    if entries.is_empty() {
        let entry = graph.entry.load(Acquire);
        if entry == NONE || is_deleted(entry) {
            return Vec::new();
        }
        entries.push(Scored {
            distance: dist.distance(entry),
            node: entry,
        });
    }
    let found = with_visited(graph.len(), |visited| {
        search_layer(graph, &dist, &entries, ef, 0, visited, &|x| {
            x != u && !is_deleted(x)
        })
    });
    found.into_iter().map(|s| s.node).collect()
}

fn elect_live_entry(graph: &Graph, is_deleted: &(impl Fn(u32) -> bool + Sync)) {
    let entry = graph.entry.load(Relaxed);
    if entry != NONE && is_deleted(entry) {
        let best = (0..graph.len() as u32)
            .filter(|&n| !is_deleted(n))
            .max_by_key(|&n| graph.levels[n as usize]);
        match best {
            Some(n) => {
                graph.entry.store(n, Release);
                graph
                    .max_level
                    .store(graph.levels[n as usize] as u32, Release);
            }
            None => {
                graph.entry.store(NONE, Release);
                graph.max_level.store(0, Release);
            }
        }
    }
}
