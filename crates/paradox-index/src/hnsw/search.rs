//! Graph traversal shared by build and search: greedy descent through the upper levels
//! and the beam search of one level (algorithm 2 of the HNSW paper).

use super::graph::{Graph, MAX_LINKS};
use super::visited::Visited;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A node and its distance to the query; ordered by distance (ties by node).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    pub distance: f32,
    pub node: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        // Distances are never NaN (inputs are validated), so `total_cmp` orders them as
        // numbers; it compiles to integer compares, cheaper than `partial_cmp` in the heaps.
        self.distance.total_cmp(&other.distance)
    }
}

impl PartialOrd for Scored {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Min-heap wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nearest(pub std::cmp::Reverse<Scored>);

/// Distance from one query to any node, supplied by the caller: it knows the vectors, the
/// metric and the encoding (f32 rows, or compressed codes for a cheaper traversal).
/// Lower is closer.
pub trait NodeDistance {
    /// Distance from the query to `node`.
    fn distance(&self, node: u32) -> f32;
    /// `out[i]` = the distance to `nodes[i]`, for every node (`out` is at least as long):
    /// one call for the fresh neighbours of an expanded node, which an implementation can
    /// compute several rows at a time.
    fn distances(&self, nodes: &[u32], out: &mut [f32]) {
        for (o, &n) in out.iter_mut().zip(nodes) {
            *o = self.distance(n);
        }
    }
    /// Hints that `node`'s vector will be read soon (a cache prefetch).
    fn prefetch(&self, _node: u32) {}
}

/// Greedy walk at `level` from `entry` towards the query; returns the closest node found.
pub(crate) fn greedy(
    graph: &Graph,
    dist: &impl NodeDistance,
    mut current: Scored,
    level: usize,
) -> Scored {
    let mut links = [0u32; MAX_LINKS];
    let mut distances = [0f32; MAX_LINKS];
    loop {
        let mut improved = false;
        let count = graph.read_links(current.node, level, &mut links);
        dist.distances(&links[..count], &mut distances[..count]);
        for (&n, &d) in links[..count].iter().zip(&distances[..count]) {
            if d < current.distance {
                current = Scored {
                    distance: d,
                    node: n,
                };
                improved = true;
            }
        }
        if !improved {
            return current;
        }
    }
}

/// Beam search at `level` starting from `entries`, keeping the `ef` closest nodes that
/// `accept` admits as results (all nodes are traversed, accepted or not). Returns the
/// results as a max-heap (farthest on top).
pub(crate) fn search_layer(
    graph: &Graph,
    dist: &impl NodeDistance,
    entries: &[Scored],
    ef: usize,
    level: usize,
    visited: &mut Visited,
    accept: &impl Fn(u32) -> bool,
) -> BinaryHeap<Scored> {
    let mut candidates: BinaryHeap<Nearest> = BinaryHeap::with_capacity(ef * 2);
    let mut results: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef + 1);
    for &e in entries {
        if visited.insert(e.node) {
            candidates.push(Nearest(std::cmp::Reverse(e)));
            if accept(e.node) {
                results.push(e);
            }
        }
    }
    while results.len() > ef {
        results.pop();
    }
    let mut links = [0u32; MAX_LINKS];
    let mut fresh = [0u32; MAX_LINKS];
    let mut distances = [0f32; MAX_LINKS];
    // Distance of the worst kept result once `ef` are kept; anything farther is useless.
    let mut bound = if results.len() >= ef {
        results.peek().map_or(f32::INFINITY, |r| r.distance)
    } else {
        f32::INFINITY
    };
    while let Some(Nearest(std::cmp::Reverse(current))) = candidates.pop() {
        if current.distance > bound {
            break;
        }
        let count = graph.read_links(current.node, level, &mut links);
        // The next candidate's links are likely read next: start fetching them now.
        if let Some(next) = candidates.peek() {
            graph.prefetch_links(next.0 .0.node, level);
        }
        let unvisited = score_fresh(dist, &links[..count], visited, &mut fresh, &mut distances);
        for (&n, &d) in fresh[..unvisited].iter().zip(&distances[..unvisited]) {
            if d < bound {
                let scored = Scored {
                    distance: d,
                    node: n,
                };
                candidates.push(Nearest(std::cmp::Reverse(scored)));
                if accept(n) {
                    results.push(scored);
                    if results.len() > ef {
                        results.pop();
                    }
                    if results.len() >= ef {
                        bound = results.peek().map_or(f32::INFINITY, |r| r.distance);
                    }
                }
            }
        }
    }
    results
}

/// High bit of a pool entry's node: its links have been expanded.
const EXPANDED: u32 = 1 << 31;

/// Largest graph [`search_layer_all`] can walk (node numbers keep their top bit free for
/// the [`EXPANDED`] mark).
pub(crate) const POOL_MAX_NODES: usize = EXPANDED as usize;

/// Beam search at `level` in which every node may be a result: the same walk as
/// [`search_layer`] with an `accept` that admits all, returned closest first.
///
/// Candidates and results are one array of at most `ef` entries kept sorted by distance,
/// each marked once expanded, instead of two binary heaps: when every visited node can be
/// a result, a candidate farther than the `ef`-th closest is never expanded, so the
/// candidates are exactly the results not yet expanded. An insertion is a binary search
/// and a short move within a few cache lines; the next node to expand is the closest
/// unexpanded entry, found by a forward scan from the last one. This avoids the
/// unpredictable branches of two heaps' sift-downs, which cost more than the moves.
/// `graph.len()` must be below [`POOL_MAX_NODES`].
pub(crate) fn search_layer_all(
    graph: &Graph,
    dist: &impl NodeDistance,
    entries: &[Scored],
    ef: usize,
    level: usize,
    visited: &mut Visited,
) -> Vec<Scored> {
    debug_assert!(graph.len() < POOL_MAX_NODES);
    let ef = ef.max(1);
    let mut pool: Vec<Scored> = Vec::with_capacity(ef + 1);
    for &e in entries {
        if visited.insert(e.node) {
            pool_insert(&mut pool, ef, e);
        }
    }
    let mut links = [0u32; MAX_LINKS];
    let mut fresh = [0u32; MAX_LINKS];
    let mut distances = [0f32; MAX_LINKS];
    let mut cursor = 0;
    while cursor < pool.len() {
        let node = pool[cursor].node;
        pool[cursor].node = node | EXPANDED;
        let count = graph.read_links(node, level, &mut links);
        // The next entry is the likeliest next node to expand: start fetching its links.
        if let Some(next) = pool.get(cursor + 1) {
            if next.node & EXPANDED == 0 {
                graph.prefetch_links(next.node, level);
            }
        }
        let unvisited = score_fresh(dist, &links[..count], visited, &mut fresh, &mut distances);
        let mut lowest = usize::MAX;
        for (&n, &d) in fresh[..unvisited].iter().zip(&distances[..unvisited]) {
            if pool.len() < ef || d < pool[pool.len() - 1].distance {
                let at = pool_insert(
                    &mut pool,
                    ef,
                    Scored {
                        distance: d,
                        node: n,
                    },
                );
                lowest = lowest.min(at);
            }
        }
        // Every entry before `cursor` is expanded; an insertion at or before it is the
        // closest unexpanded node, otherwise the next unexpanded one after it is.
        cursor = if lowest <= cursor { lowest } else { cursor + 1 };
        while cursor < pool.len() && pool[cursor].node & EXPANDED != 0 {
            cursor += 1;
        }
    }
    for s in &mut pool {
        s.node &= !EXPANDED;
    }
    pool
}

/// Inserts `s` into the sorted `pool` (after equal distances), dropping the farthest entry
/// when that makes more than `ef`; returns the position.
#[inline]
fn pool_insert(pool: &mut Vec<Scored>, ef: usize, s: Scored) -> usize {
    let at = pool.partition_point(|p| p.distance <= s.distance);
    if pool.len() >= ef {
        if at >= ef {
            return at;
        }
        pool.pop();
    }
    pool.insert(at, s);
    at
}

/// Marks the unvisited nodes of `links` visited, copies them to the front of `fresh` with
/// their distances at the front of `distances` (one [`NodeDistance::distances`] call, their
/// rows prefetched first), and returns how many there are.
#[inline]
fn score_fresh(
    dist: &impl NodeDistance,
    links: &[u32],
    visited: &mut Visited,
    fresh: &mut [u32; MAX_LINKS],
    distances: &mut [f32; MAX_LINKS],
) -> usize {
    let mut unvisited = 0;
    for &n in links {
        if visited.insert(n) {
            fresh[unvisited] = n;
            unvisited += 1;
            dist.prefetch(n);
        }
    }
    dist.distances(&fresh[..unvisited], &mut distances[..unvisited]);
    unvisited
}
