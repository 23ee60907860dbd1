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
    loop {
        let mut improved = false;
        let count = graph.read_links(current.node, level, &mut links);
        for &n in &links[..count] {
            dist.prefetch(n);
        }
        for &n in &links[..count] {
            let d = dist.distance(n);
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
        let mut unvisited = 0;
        for &n in &links[..count] {
            if visited.insert(n) {
                fresh[unvisited] = n;
                unvisited += 1;
                dist.prefetch(n);
            }
        }
        for &n in &fresh[..unvisited] {
            let d = dist.distance(n);
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
