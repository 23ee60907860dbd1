//! Work the calling thread does itself, with idle rayon workers joining in.
//!
//! `par_iter` from a thread outside the rayon pool hands the whole job to the pool and
//! blocks: a worker must wake to start it and the caller must wake when it ends. On a
//! busy machine (an insert stream, index builds, other clients) either wake-up can wait a
//! scheduler slice, several milliseconds, which became most of a search's p99 under a
//! 20k vectors/s stream. [`run`] inverts the roles: the caller claims and runs items
//! itself from the first microsecond, helpers posted to the pool claim from the same
//! counter when (if) they start, and the caller only ever waits for a helper that is
//! running an item, never for one that has not started. A query is then never slower
//! than running it alone on the calling thread (plus one item's tail), and as fast as the
//! pool when the pool is free.
//!
//! Soundness: `work` borrows the caller's stack, and the helpers are `'static` pool jobs
//! that may start after [`run`] returned. A helper therefore reaches `work` only through
//! [`Gate::enter`], which admits it only while the caller has not closed the gate; the
//! caller closes the gate and waits until no admitted helper is left before it returns
//! or unwinds (a drop guard), so `work` outlives every use of it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Runs `work(i)` for every `i` in `0..n`, each exactly once, on the calling thread and
/// on up to `helpers` rayon workers that happen to be free; returns when all are done.
///
/// Called from inside the rayon pool it is plain work stealing (`par_iter`): a worker
/// waiting would idle a pool thread, and the pool's own scheduling has no hand-off there.
///
/// Callers outside the pool share its threads: a caller asks for no more helpers than
/// the pool has threads that no caller (each works on its own thread) and no other
/// caller's helper is using. Two searches arriving together on two cores then run one
/// thread each instead of four threads on two cores, where a helper preempted in the
/// middle of an item keeps its caller waiting for a scheduler slice.
pub(crate) fn run(n: usize, helpers: usize, work: &(dyn Fn(usize) + Sync)) {
    use rayon::prelude::*;
    if rayon::current_thread_index().is_some() {
        if helpers.min(n.saturating_sub(1)) == 0 {
            (0..n).for_each(work);
        } else {
            (0..n).into_par_iter().for_each(work);
        }
        return;
    }
    let callers = Caller::enter();
    let taken = CALLERS.load(Ordering::Acquire) + GRANTED.load(Ordering::Acquire);
    let free = rayon::current_num_threads().saturating_sub(taken);
    let helpers = helpers.min(n.saturating_sub(1)).min(free);
    if helpers == 0 {
        (0..n).for_each(work);
        return;
    }
    let _granted = callers.grant(helpers);
    // SAFETY: the `'static` reference is used only by helpers admitted through the gate
    // (see `Shared::help`); `CloseOnDrop` closes the gate and waits for every admitted
    // helper to leave before this frame (which owns the borrow) returns or unwinds, and
    // no helper is admitted after the gate is closed.
    let task: &'static (dyn Fn(usize) + Sync) = unsafe {
        std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(work)
    };
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        n,
        gate: Gate::default(),
        task,
        panic: Mutex::new(None),
    });
    {
        let _close = CloseOnDrop(&shared);
        for _ in 0..helpers {
            let shared = Arc::clone(&shared);
            rayon::spawn(move || shared.help());
        }
        shared.claim_all(work);
    }
    // A helper's panic surfaces on the caller, as it would from `par_iter` (a panic in a
    // `rayon::spawn` job would abort the process).
    let panicked = shared
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(payload) = panicked {
        std::panic::resume_unwind(payload);
    }
}

/// Callers outside the pool inside [`run`] now.
static CALLERS: AtomicUsize = AtomicUsize::new(0);

/// Helpers the callers inside [`run`] asked for (started or not).
static GRANTED: AtomicUsize = AtomicUsize::new(0);

/// Counts its caller in [`CALLERS`] while it lives.
struct Caller;

impl Caller {
    fn enter() -> Caller {
        CALLERS.fetch_add(1, Ordering::AcqRel);
        Caller
    }

    /// Counts `helpers` in [`GRANTED`] while the result lives.
    fn grant(&self, helpers: usize) -> Granted {
        GRANTED.fetch_add(helpers, Ordering::AcqRel);
        Granted(helpers)
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        CALLERS.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Granted(usize);

impl Drop for Granted {
    fn drop(&mut self) {
        GRANTED.fetch_sub(self.0, Ordering::AcqRel);
    }
}

struct Shared {
    next: AtomicUsize,
    n: usize,
    gate: Gate,
    /// Valid only while the gate admits (see the module comment).
    task: &'static (dyn Fn(usize) + Sync),
    /// The first panic of a helper's item.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Shared {
    fn claim_all(&self, work: &(dyn Fn(usize) + Sync)) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.n {
                return;
            }
            work(i);
        }
    }

    fn help(&self) {
        if self.next.load(Ordering::Relaxed) >= self.n || !self.gate.enter() {
            return;
        }
        let _leave = LeaveOnDrop(&self.gate);
        let run = std::panic::AssertUnwindSafe(|| self.claim_all(self.task));
        if let Err(payload) = std::panic::catch_unwind(run) {
            // No item is left to anyone: the caller stops claiming and re-raises.
            self.next.store(self.n, Ordering::Relaxed);
            let mut slot = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
            slot.get_or_insert(payload);
        }
    }
}

/// Admission of helpers: `open` until the caller closes it, and how many are inside.
#[derive(Default)]
struct Gate {
    inside: Mutex<(usize, bool)>,
    left: Condvar,
}

impl Gate {
    /// Admits a helper unless the gate is closed.
    fn enter(&self) -> bool {
        let mut g = self.inside.lock().unwrap_or_else(PoisonError::into_inner);
        if g.1 {
            return false;
        }
        g.0 += 1;
        true
    }

    fn leave(&self) {
        let mut g = self.inside.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 -= 1;
        if g.0 == 0 && g.1 {
            self.left.notify_all();
        }
    }

    /// Closes the gate and waits until every admitted helper has left.
    fn close(&self) {
        let mut g = self.inside.lock().unwrap_or_else(PoisonError::into_inner);
        g.1 = true;
        while g.0 > 0 {
            g = self.left.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct LeaveOnDrop<'a>(&'a Gate);

impl Drop for LeaveOnDrop<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

struct CloseOnDrop<'a>(&'a Shared);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.gate.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_item_runs_exactly_once() {
        for n in [0, 1, 2, 3, 17, 1000] {
            let counts: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
            run(n, 4, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                counts.iter().all(|c| c.load(Ordering::Relaxed) == 1),
                "n = {n}"
            );
        }
    }

    #[test]
    fn the_caller_finishes_alone_when_the_pool_is_busy() {
        // Every pool worker is held until the run has returned: the caller must do all
        // the items itself and not wait for helpers that never started.
        let threads = rayon::current_num_threads();
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..threads {
            let (release, started) = (Arc::clone(&release), Arc::clone(&started));
            rayon::spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let (lock, cv) = &*release;
                let mut go = lock.lock().unwrap();
                while !*go {
                    go = cv.wait(go).unwrap();
                }
            });
        }
        while started.load(Ordering::SeqCst) < threads {
            std::thread::yield_now();
        }
        let on_caller = AtomicUsize::new(0);
        let caller = std::thread::current().id();
        run(64, threads, &|_| {
            if std::thread::current().id() == caller {
                on_caller.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(on_caller.load(Ordering::Relaxed), 64);
        let (lock, cv) = &*release;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }

    /// With as many callers running as the pool has threads, another caller gets no
    /// helper: its items (slow enough that a free helper would take some) all run on
    /// its own thread.
    #[test]
    fn callers_take_no_more_helpers_than_the_threads_beside_them() {
        let threads = rayon::current_num_threads();
        let release = Arc::new((Mutex::new(false), Condvar::new()));
        let inside = Arc::new(AtomicUsize::new(0));
        let blockers: Vec<_> = (1..threads)
            .map(|_| {
                let (release, inside) = (Arc::clone(&release), Arc::clone(&inside));
                std::thread::spawn(move || {
                    run(1, threads, &|_| {
                        inside.fetch_add(1, Ordering::SeqCst);
                        let (lock, cv) = &*release;
                        let mut go = lock.lock().unwrap();
                        while !*go {
                            go = cv.wait(go).unwrap();
                        }
                    })
                })
            })
            .collect();
        while inside.load(Ordering::SeqCst) < threads - 1 {
            std::thread::yield_now();
        }
        let on_caller = AtomicUsize::new(0);
        let caller = std::thread::current().id();
        run(32, threads, &|_| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            if std::thread::current().id() == caller {
                on_caller.fetch_add(1, Ordering::Relaxed);
            }
        });
        let (lock, cv) = &*release;
        *lock.lock().unwrap() = true;
        cv.notify_all();
        for blocker in blockers {
            blocker.join().unwrap();
        }
        assert_eq!(on_caller.load(Ordering::Relaxed), 32);
    }

    #[test]
    fn a_panicking_item_reaches_the_caller() {
        let result = std::panic::catch_unwind(|| {
            run(64, 4, &|i| {
                if i % 7 == 3 {
                    panic!("item {i}");
                }
            })
        });
        assert!(result.is_err());
    }

    #[test]
    fn inside_the_pool_items_still_run_once() {
        let counts: Vec<AtomicU32> = (0..100).map(|_| AtomicU32::new(0)).collect();
        rayon::scope(|_| {
            run(100, 3, &|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            })
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }
}
