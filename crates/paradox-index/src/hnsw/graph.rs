//! The layered proximity graph of HNSW and its storage.
//!
//! Layout (chosen for cache-friendly traversal and a one-copy persistence):
//!
//! ```text
//! level0:        n blocks of (1 + m0) u32: [count, neighbour_0, ..., neighbour_{m0-1}]
//! upper_offsets: n u32: start of the node's upper block in `upper`, or NONE for level 0
//! upper:         per node with level L >= 1: L blocks of (1 + m) u32, for levels 1..=L
//! levels:        n u8
//! ```
//!
//! Links are `AtomicU32` so that a parallel build can update a node's list (under that
//! node's lock) while other threads read other lists. Relaxed atomic loads compile to
//! plain loads, so searches on a finished graph pay nothing for this.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

pub(crate) const NONE: u32 = u32::MAX;
/// Upper bound on neighbours per list (m0 = 2m, m <= 64).
pub(crate) const MAX_LINKS: usize = 128;

#[derive(Debug)]
pub(crate) struct Graph {
    pub m: usize,
    pub m0: usize,
    pub levels: Vec<u8>,
    pub level0: Vec<AtomicU32>,
    pub upper_offsets: Vec<u32>,
    pub upper: Vec<AtomicU32>,
    /// Entry point and the top level, changed together under `entry_lock`.
    pub entry: AtomicU32,
    pub max_level: AtomicU32,
    pub entry_lock: Mutex<()>,
    /// One lock per node, held while its link lists change (build and repair only).
    pub locks: Vec<Mutex<()>>,
}

impl Graph {
    /// An empty graph with room for nodes of the given levels.
    pub fn with_levels(m: usize, levels: Vec<u8>) -> Graph {
        let m0 = 2 * m;
        let n = levels.len();
        let mut upper_offsets = Vec::with_capacity(n);
        let mut total = 0usize;
        for &l in &levels {
            if l == 0 {
                upper_offsets.push(NONE);
            } else {
                upper_offsets.push(total as u32);
                total += l as usize * (1 + m);
            }
        }
        Graph {
            m,
            m0,
            levels,
            level0: (0..n * (1 + m0)).map(|_| AtomicU32::new(0)).collect(),
            upper_offsets,
            upper: (0..total).map(|_| AtomicU32::new(0)).collect(),
            entry: AtomicU32::new(NONE),
            max_level: AtomicU32::new(0),
            entry_lock: Mutex::new(()),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Appends a node of `level` (incremental insert; needs exclusive access).
    pub fn push_node(&mut self, level: u8) -> u32 {
        let node = self.levels.len() as u32;
        self.levels.push(level);
        self.level0
            .extend((0..1 + self.m0).map(|_| AtomicU32::new(0)));
        if level == 0 {
            self.upper_offsets.push(NONE);
        } else {
            self.upper_offsets.push(self.upper.len() as u32);
            self.upper
                .extend((0..level as usize * (1 + self.m)).map(|_| AtomicU32::new(0)));
        }
        self.locks.push(Mutex::new(()));
        node
    }

    /// The block `[count, links...]` of `node` at `level`.
    #[inline(always)]
    pub fn block(&self, node: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let start = node as usize * (1 + self.m0);
            &self.level0[start..start + 1 + self.m0]
        } else {
            let base = self.upper_offsets[node as usize] as usize + (level - 1) * (1 + self.m);
            &self.upper[base..base + 1 + self.m]
        }
    }

    /// Hints that the links of `node` at `level` will be read soon.
    #[inline(always)]
    pub fn prefetch_links(&self, node: u32, level: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let block = self.block(node, level);
            // SAFETY: prefetch is only a hint; the pointer is inside a live slice.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch(block.as_ptr().cast::<i8>(), _MM_HINT_T0);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (node, level);
    }

    /// Max links at `level`.
    #[inline]
    pub fn capacity(&self, level: usize) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// Copies the links of `node` at `level` into `out`; returns how many.
    #[inline(always)]
    pub fn read_links(&self, node: u32, level: usize, out: &mut [u32; MAX_LINKS]) -> usize {
        let block = self.block(node, level);
        let count = (block[0].load(Relaxed) as usize).min(block.len() - 1);
        for (o, link) in out.iter_mut().zip(&block[1..1 + count]) {
            *o = link.load(Relaxed);
        }
        count
    }

    /// Replaces the links of `node` at `level` (caller holds the node's lock or has
    /// exclusive access).
    #[inline]
    pub fn write_links(&self, node: u32, level: usize, links: &[u32]) {
        let block = self.block(node, level);
        let count = links.len().min(block.len() - 1);
        for (slot, &l) in block[1..].iter().zip(&links[..count]) {
            slot.store(l, Relaxed);
        }
        block[0].store(count as u32, Relaxed);
    }

    /// An independent copy (links as of now).
    pub fn deep_copy(&self) -> Graph {
        let copy = |v: &[AtomicU32]| v.iter().map(|a| AtomicU32::new(a.load(Relaxed))).collect();
        Graph {
            m: self.m,
            m0: self.m0,
            levels: self.levels.clone(),
            level0: copy(&self.level0),
            upper_offsets: self.upper_offsets.clone(),
            upper: copy(&self.upper),
            entry: AtomicU32::new(self.entry.load(Relaxed)),
            max_level: AtomicU32::new(self.max_level.load(Relaxed)),
            entry_lock: Mutex::new(()),
            locks: (0..self.len()).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The graph without the nodes `dropped` selects, the others renumbered in order (a
    /// kept node's new number is the count of kept nodes before it). Links to dropped
    /// nodes are left out: [`repair`](super::build::repair) first, so there are none.
    pub fn without(&self, dropped: &impl Fn(u32) -> bool) -> Graph {
        let n = self.len();
        let mut renumbered = vec![NONE; n];
        let mut levels = Vec::with_capacity(n);
        for node in 0..n as u32 {
            if !dropped(node) {
                renumbered[node as usize] = levels.len() as u32;
                levels.push(self.levels[node as usize]);
            }
        }
        let out = Graph::with_levels(self.m, levels);
        let mut links = [0u32; MAX_LINKS];
        let mut mapped = Vec::with_capacity(MAX_LINKS);
        for (old, &new) in renumbered.iter().enumerate() {
            if new == NONE {
                continue;
            }
            for level in 0..=self.levels[old] as usize {
                let count = self.read_links(old as u32, level, &mut links);
                mapped.clear();
                mapped.extend(
                    links[..count]
                        .iter()
                        .map(|&l| renumbered[l as usize])
                        .filter(|&l| l != NONE),
                );
                out.write_links(new, level, &mapped);
            }
        }
        let entry = self.entry.load(Relaxed);
        let kept_entry = if entry == NONE {
            NONE
        } else {
            renumbered[entry as usize]
        };
        // The entry is the node of the top level; if it was dropped, the highest kept node.
        let entry = if kept_entry != NONE {
            kept_entry
        } else {
            (0..out.len() as u32)
                .max_by_key(|&node| out.levels[node as usize])
                .unwrap_or(NONE)
        };
        if entry != NONE {
            out.entry.store(entry, Relaxed);
            out.max_level
                .store(out.levels[entry as usize] as u32, Relaxed);
        }
        out
    }

    /// Bytes held by the graph.
    pub fn memory_bytes(&self) -> usize {
        self.levels.capacity()
            + (self.level0.capacity() + self.upper.capacity() + self.upper_offsets.capacity()) * 4
            + self.locks.capacity() * std::mem::size_of::<Mutex<()>>()
    }
}
