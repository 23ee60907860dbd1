//! Per-thread "visited" marks for graph searches: a generation counter per node, so
//! clearing between searches is O(1) instead of O(n).

use std::cell::RefCell;

#[derive(Debug, Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    /// Prepares for a new search over `n` nodes.
    pub fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    /// Marks `node`; returns whether it was unvisited.
    #[inline]
    pub fn insert(&mut self, node: u32) -> bool {
        // SAFETY-free fast path: bounds are guaranteed by `reset(n)` with n > node; keep
        // the check (it is predictable) rather than reach for unchecked indexing.
        let slot = &mut self.marks[node as usize];
        if *slot == self.generation {
            false
        } else {
            *slot = self.generation;
            true
        }
    }
}

thread_local! {
    static POOL: RefCell<Visited> = RefCell::new(Visited::default());
}

/// Runs `f` with this thread's visited set, reset for `n` nodes.
pub(crate) fn with_visited<T>(n: usize, f: impl FnOnce(&mut Visited) -> T) -> T {
    POOL.with(|cell| match cell.try_borrow_mut() {
        Ok(mut visited) => {
            visited.reset(n);
            f(&mut visited)
        }
        // Re-entrant use on one thread (not expected): fall back to a fresh set.
        Err(_) => {
            let mut visited = Visited::default();
            visited.reset(n);
            f(&mut visited)
        }
    })
}
