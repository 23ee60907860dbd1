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
//!
//! `level0` and `upper` are [`Links`]: held by the graph (`AtomicU32`s), or read in place
//! from the bytes of a memory-mapped index file (opening then copies no link), where they
//! are plain `u32` reads and never seen as atomics. Every method that changes links of an
//! existing node or adds one (`insert`, `repair`, both `&mut self` on the index) first
//! calls [`Graph::make_owned`]; a store to links read in place panics.

use crate::SharedBytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

pub(crate) const NONE: u32 = u32::MAX;
/// Upper bound on neighbours per list (m0 = 2m, m <= 64).
pub(crate) const MAX_LINKS: usize = 128;

/// An array of links, held or read in place from shared bytes.
pub(crate) struct Links {
    /// `len` links at `ptr`, inside `owner`'s buffer; kept beside it so that reading a
    /// block costs no lookup of where the links live.
    ptr: *const u32,
    len: usize,
    owner: LinksOwner,
}

enum LinksOwner {
    Held(Vec<AtomicU32>),
    /// Little-endian `u32`s in these bytes, at a 4-aligned address, only ever read
    /// through `Links::ptr`; `_bytes` is held so they stay alive as long as it.
    Shared {
        _bytes: SharedBytes,
    },
}

// SAFETY: a `Links` is a view of a buffer it owns: `AtomicU32`s (`Send + Sync`), or bytes
// that are `Send + Sync`, never change and are only read.
unsafe impl Send for Links {}
// SAFETY: as above; held links are only accessed atomically.
unsafe impl Sync for Links {}

impl Links {
    /// `n` zero links, held.
    pub fn zeroed(n: usize) -> Links {
        Links::held((0..n).map(|_| AtomicU32::new(0)).collect())
    }

    /// These values, held.
    pub fn from_values(values: &[u32]) -> Links {
        Links::held(values.iter().map(|&v| AtomicU32::new(v)).collect())
    }

    fn held(links: Vec<AtomicU32>) -> Links {
        Links {
            ptr: links.as_ptr().cast::<u32>(),
            len: links.len(),
            owner: LinksOwner::Held(links),
        }
    }

    /// The `len` `u32`s at byte `start` of `bytes`, read in place; `None` where they
    /// cannot be (out of range, not 4-aligned in memory, or a big-endian target).
    pub fn in_place(bytes: SharedBytes, start: usize, len: usize) -> Option<Links> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let data = (*bytes).as_ref();
        let end = len.checked_mul(4).and_then(|b| b.checked_add(start))?;
        let region = data.get(start..end)?;
        let ptr = region.as_ptr().cast::<u32>();
        if !ptr.is_aligned() {
            return None;
        }
        Some(Links {
            ptr,
            len,
            owner: LinksOwner::Shared { _bytes: bytes },
        })
    }

    /// Links in the array.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the links are read in place from shared bytes.
    pub fn is_shared(&self) -> bool {
        matches!(self.owner, LinksOwner::Shared { .. })
    }

    /// Link `i` (panics past the end).
    #[inline]
    pub fn load(&self, i: usize) -> u32 {
        assert!(i < self.len, "link {i} of {}", self.len);
        // SAFETY: `i` is in range; see `read_block`.
        unsafe { self.load_unchecked(i) }
    }

    /// # Safety
    /// `i < self.len`.
    #[inline(always)]
    unsafe fn load_unchecked(&self, i: usize) -> u32 {
        // SAFETY: `i < len` (the caller's promise), so `at` is inside the buffer; held
        // links are `AtomicU32`s (the pointer came from their `Vec`), shared ones are
        // aligned `u32`s that nothing writes.
        unsafe {
            let at = self.ptr.add(i);
            match self.owner {
                // Held: other threads may store to it during a build, so atomically.
                LinksOwner::Held(_) => (*at.cast::<AtomicU32>()).load(Relaxed),
                // Shared: immutable bytes, a plain read.
                LinksOwner::Shared { .. } => at.read(),
            }
        }
    }

    /// Copies the block at `start` (`[count, links...]`, room for `cap` links) into
    /// `out`; returns how many (the stored count, at most `cap`).
    #[inline(always)]
    fn read_block(&self, start: usize, cap: usize, out: &mut [u32; MAX_LINKS]) -> usize {
        assert!(cap <= MAX_LINKS && start < self.len && self.len - start > cap);
        // SAFETY: `start..=start + cap` is in range (checked above), and every link read
        // is within it; held links are `AtomicU32`s, shared ones immutable `u32`s (see
        // `load_unchecked`). One branch per block, not per link.
        unsafe {
            let at = self.ptr.add(start);
            match self.owner {
                LinksOwner::Held(_) => {
                    let at = at.cast::<AtomicU32>();
                    let count = ((*at).load(Relaxed) as usize).min(cap);
                    for (j, o) in out[..count].iter_mut().enumerate() {
                        *o = (*at.add(1 + j)).load(Relaxed);
                    }
                    count
                }
                LinksOwner::Shared { .. } => {
                    let count = (at.read() as usize).min(cap);
                    for (j, o) in out[..count].iter_mut().enumerate() {
                        *o = at.add(1 + j).read();
                    }
                    count
                }
            }
        }
    }

    /// Replaces the block at `start` with `links` (at most `cap` of them). Held links
    /// only: shared ones are copied first ([`Graph::make_owned`]).
    #[inline]
    fn write_block(&self, start: usize, cap: usize, links: &[u32]) {
        let LinksOwner::Held(held) = &self.owner else {
            panic!("links read in place are never written: make_owned first");
        };
        let block = &held[start..start + 1 + cap];
        let count = links.len().min(cap);
        for (slot, &l) in block[1..].iter().zip(&links[..count]) {
            slot.store(l, Relaxed);
        }
        block[0].store(count as u32, Relaxed);
    }

    /// The address of link `i`, for prefetching (never dereferenced here).
    #[inline(always)]
    fn address(&self, i: usize) -> *const u32 {
        self.ptr.wrapping_add(i)
    }

    /// Every link, held (a copy).
    fn to_held(&self) -> Links {
        Links::held(
            (0..self.len)
                .map(|i| AtomicU32::new(self.load(i)))
                .collect(),
        )
    }

    /// Copies shared links into a buffer of the graph's own (no-op when held).
    pub fn make_owned(&mut self) {
        if self.is_shared() {
            *self = self.to_held();
        }
    }

    /// Appends `n` zero links (copying shared ones first).
    pub fn extend_zeroed(&mut self, n: usize) {
        self.make_owned();
        if let LinksOwner::Held(links) = &mut self.owner {
            links.extend((0..n).map(|_| AtomicU32::new(0)));
            self.ptr = links.as_ptr().cast::<u32>();
            self.len = links.len();
        }
    }

    /// Heap bytes held (none for links read in place: those are the file's pages).
    pub fn held_bytes(&self) -> usize {
        match &self.owner {
            LinksOwner::Held(links) => links.capacity() * 4,
            LinksOwner::Shared { .. } => 0,
        }
    }
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("len", &self.len)
            .field("shared", &self.is_shared())
            .finish()
    }
}

#[derive(Debug)]
pub(crate) struct Graph {
    pub m: usize,
    pub m0: usize,
    pub levels: Vec<u8>,
    pub level0: Links,
    pub upper_offsets: Vec<u32>,
    pub upper: Links,
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
            level0: Links::zeroed(n * (1 + m0)),
            upper_offsets,
            upper: Links::zeroed(total),
            entry: AtomicU32::new(NONE),
            max_level: AtomicU32::new(0),
            entry_lock: Mutex::new(()),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// A graph over links decoded or read in place (`levels`, `upper_offsets` and the
    /// links already checked against each other).
    pub fn from_parts(
        m: usize,
        levels: Vec<u8>,
        level0: Links,
        upper_offsets: Vec<u32>,
        upper: Links,
        entry: u32,
        max_level: u32,
    ) -> Graph {
        let n = levels.len();
        Graph {
            m,
            m0: 2 * m,
            levels,
            level0,
            upper_offsets,
            upper,
            entry: AtomicU32::new(entry),
            max_level: AtomicU32::new(max_level),
            entry_lock: Mutex::new(()),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Copies links read in place into buffers of the graph's own, so they can change.
    /// Every `&mut self` method of the index that writes links calls this first.
    pub fn make_owned(&mut self) {
        self.level0.make_owned();
        self.upper.make_owned();
    }

    /// Whether the links are read in place from a mapped file.
    pub fn is_shared(&self) -> bool {
        self.level0.is_shared() || self.upper.is_shared()
    }

    /// Appends a node of `level` (incremental insert; needs exclusive access).
    pub fn push_node(&mut self, level: u8) -> u32 {
        self.make_owned();
        let node = self.levels.len() as u32;
        self.levels.push(level);
        self.level0.extend_zeroed(1 + self.m0);
        if level == 0 {
            self.upper_offsets.push(NONE);
        } else {
            self.upper_offsets.push(self.upper.len() as u32);
            self.upper.extend_zeroed(level as usize * (1 + self.m));
        }
        self.locks.push(Mutex::new(()));
        node
    }

    /// The links holding the block `[count, links...]` of `node` at `level`, and where
    /// it starts in them.
    #[inline(always)]
    fn block(&self, node: u32, level: usize) -> (&Links, usize) {
        if level == 0 {
            (&self.level0, node as usize * (1 + self.m0))
        } else {
            let base = self.upper_offsets[node as usize] as usize + (level - 1) * (1 + self.m);
            (&self.upper, base)
        }
    }

    /// Hints that the links of `node` at `level` will be read soon.
    #[inline(always)]
    pub fn prefetch_links(&self, node: u32, level: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let (links, start) = self.block(node, level);
            // SAFETY: prefetch is only a hint and never faults, whatever the address.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch(links.address(start).cast::<i8>(), _MM_HINT_T0);
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
        let (links, start) = self.block(node, level);
        links.read_block(start, self.capacity(level), out)
    }

    /// Replaces the links of `node` at `level` (caller holds the node's lock or has
    /// exclusive access; the links are held, see [`Graph::make_owned`]).
    #[inline]
    pub fn write_links(&self, node: u32, level: usize, links: &[u32]) {
        let (held, start) = self.block(node, level);
        held.write_block(start, self.capacity(level), links);
    }

    /// An independent copy (links as of now), held.
    pub fn deep_copy(&self) -> Graph {
        Graph {
            m: self.m,
            m0: self.m0,
            levels: self.levels.clone(),
            level0: self.level0.to_held(),
            upper_offsets: self.upper_offsets.clone(),
            upper: self.upper.to_held(),
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
            + self.level0.held_bytes()
            + self.upper.held_bytes()
            + self.upper_offsets.capacity() * 4
            + self.locks.capacity() * std::mem::size_of::<Mutex<()>>()
    }
}
