//! The background maintenance worker: one thread per collection that seals the growing
//! segment once it reaches the seal threshold, then merges and compacts sealed segments
//! as `merge_policy.rs` says.
//!
//! ```text
//!   writer: apply ──(growing ≥ threshold)──> signal ─┐
//!                  ──(growing ≥ 2 × threshold)──> seal itself (back-pressure)
//!                                                    v
//!   worker:  sleep ──wake──> seal if due ──> merge/compact the first job planned ──┐
//!              ^                 (repeat while anything is due)                     │
//!              └──────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The worker holds only a `Weak` reference between jobs, so it never keeps a collection
//! open; stopping it ([`Collection::stop_maintenance`], called when the engine drops the
//! collection or is dropped, and by `Drop`) waits for the job in progress, and a merge in
//! progress gives up at its next step. Writers never wait for a merge; searches never wait
//! for a seal's or a merge's file writes or index builds, only for their final swap.
//! Without a running worker (it was stopped, or could not start) writers seal at the
//! threshold themselves, as they did before the worker existed.

use super::merge_policy::{Job, MergePolicy, SegmentSizes};
use super::Collection;
use crate::config::IndexConfig;
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often an idle worker looks for work nobody signalled (a retry after an error);
/// also how long writes must have paused before pages mapped ahead are given back.
const IDLE_RECHECK: Duration = Duration::from_secs(5);

/// Bytes of pages given back per step (see `Collection::release_idle_memory`).
const RELEASE_STEP: usize = 4 << 20;

/// What the maintenance worker is doing and has done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaintenanceInfo {
    /// Whether the worker thread is running.
    pub worker: bool,
    /// Jobs due now, the one running included: the seal of the growing segment, and the
    /// merges and compactions the policy plans.
    pub queue_depth: usize,
    /// Seals done since open (by the worker, by writers under back-pressure, by `flush`).
    pub seals: u64,
    /// Background merges of small segments done since open.
    pub merges: u64,
    /// Background compactions (segments rewritten for their deleted rows) since open.
    pub compactions: u64,
    /// Segments rewritten alone (background compactions and [`Collection::compact`])
    /// that kept their graph minus the rows dropped instead of building a new one, since
    /// open.
    pub graphs_kept: u64,
    /// Segments written by a merge or compaction that kept their sources' IVF codes
    /// (copied list by list) instead of training and encoding anew, since open.
    pub ivf_codes_kept: u64,
    /// The last job's error, if it failed (it is retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Signal {
    wake: bool,
    stop: bool,
    running: bool,
}

/// The worker's handle and what it shares with the collection.
#[derive(Debug, Default)]
pub(crate) struct Maintenance {
    signal: Mutex<Signal>,
    /// Wakes the worker (and waiters for idleness).
    changed: Condvar,
    stopping: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    seals: AtomicU64,
    merges: AtomicU64,
    compactions: AtomicU64,
    pub(crate) graphs_kept: AtomicU64,
    pub(crate) ivf_codes_kept: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The collection's applied log sequence number when the worker first found nothing
    /// to do since it last changed, and when; see [`Collection::release_idle_memory`].
    idle_since: Mutex<Option<(u64, Instant)>>,
}

impl Maintenance {
    /// Starts the worker for `collection`. If the thread cannot start, writers seal by
    /// themselves (see the module doc).
    pub fn start(collection: &Arc<Collection>) {
        let weak = Arc::downgrade(collection);
        let shared = collection.maintenance.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("paradox-maint-{}", collection.name()))
            .spawn(move || worker(weak, shared));
        if let Ok(handle) = spawned {
            *collection.maintenance.thread.lock() = Some(handle);
        }
    }

    /// Whether a worker thread is there to take signals.
    pub fn alive(&self) -> bool {
        self.thread.lock().is_some() && !self.stopping()
    }

    /// Whether the worker was asked to stop.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Asks the worker to look for work.
    pub fn wake(&self) {
        let mut signal = self.signal.lock();
        signal.wake = true;
        self.changed.notify_all();
    }

    /// Stops the worker and waits for it (unless called from the worker itself, when the
    /// collection is dropped on it: it then ends on its own).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        {
            let mut signal = self.signal.lock();
            signal.stop = true;
            self.changed.notify_all();
        }
        let handle = self.thread.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    /// Waits until the worker has nothing signalled and no job running.
    fn wait_idle(&self) {
        let mut signal = self.signal.lock();
        while (signal.wake || signal.running) && !signal.stop {
            self.changed.wait(&mut signal);
        }
    }

    fn running(&self) -> bool {
        self.signal.lock().running
    }

    /// Whether a live worker has a job running or a wake-up it has not taken yet.
    pub fn busy(&self) -> bool {
        if !self.alive() {
            return false;
        }
        let signal = self.signal.lock();
        (signal.wake || signal.running) && !signal.stop
    }

    pub fn count_seal(&self) {
        self.seals.fetch_add(1, Ordering::Relaxed);
    }
}

/// The worker thread's loop.
fn worker(collection: Weak<Collection>, shared: Arc<Maintenance>) {
    loop {
        {
            let mut signal = shared.signal.lock();
            if !signal.wake && !signal.stop {
                shared.changed.wait_for(&mut signal, IDLE_RECHECK);
            }
            if signal.stop {
                return;
            }
            signal.wake = false;
            signal.running = true;
        }
        if let Some(collection) = collection.upgrade() {
            collection.run_due_jobs();
        } else {
            return;
        }
        let mut signal = shared.signal.lock();
        signal.running = false;
        shared.changed.notify_all();
    }
}

impl Collection {
    /// Stops the background maintenance worker (see the module doc); writers then seal
    /// by themselves. Waits for the job in progress.
    pub fn stop_maintenance(&self) {
        self.maintenance.stop();
    }

    /// Tells the worker a write happened; seals on the writer's thread when the growing
    /// segment outgrew twice the threshold (or the threshold, with no worker).
    pub(crate) fn after_write(&self) -> crate::error::Result<()> {
        if !self.growing_over(1) {
            return Ok(());
        }
        if self.maintenance.alive() && !self.growing_over(2) {
            self.maintenance.wake();
            return Ok(());
        }
        self.seal(false).map(drop)
    }

    /// Runs jobs until none is due (or the worker is stopping).
    fn run_due_jobs(&self) {
        while !self.maintenance.stopping() && self.check_writable().is_ok() {
            let result = if self.growing_over(1) {
                self.seal(false).map(|_| true)
            } else {
                match self.planned_jobs().into_iter().next() {
                    Some(job) => self.run_job(&job).map(|_| true),
                    None => {
                        self.release_idle_memory(IDLE_RECHECK);
                        Ok(false)
                    }
                }
            };
            match result {
                Ok(true) => *self.maintenance.last_error.lock() = None,
                Ok(false) => return,
                Err(e) => {
                    *self.maintenance.last_error.lock() = Some(e.to_string());
                    return;
                }
            }
        }
    }

    /// With nothing due: once no write has come for `quiet` (the same applied log
    /// sequence number at looks that far apart), gives back the growing segment's pages
    /// mapped ahead of rows (`GrowingSegment::release_spare`): a seal maps the next
    /// segment's pages for the stream it expects, and when the stream has stopped (a bulk
    /// load ended) they would otherwise stay resident, up to `seal_bytes` per collection.
    /// In steps of [`RELEASE_STEP`] bytes, the state's read lock taken for each: a write
    /// queued for the lock meanwhile holds up searches for one step at most.
    pub(super) fn release_idle_memory(&self, quiet: Duration) {
        let seq = self.state.read().applied_seq();
        {
            let mut since = self.maintenance.idle_since.lock();
            match *since {
                Some((seen, at)) if seen == seq => {
                    if at.elapsed() < quiet {
                        return;
                    }
                }
                _ => {
                    *since = Some((seq, Instant::now()));
                    return;
                }
            }
        }
        if !self.state.read().growing.take_spare_mapped() {
            return;
        }
        let mut skip = 0;
        while let Some(_released) = self.state.read().growing.release_spare(skip, RELEASE_STEP) {
            skip += RELEASE_STEP;
        }
    }

    fn run_job(&self, job: &Job) -> crate::error::Result<()> {
        let _merge = self.merge_lock.lock();
        // Sources may have changed while the lock was awaited (a manual compaction).
        if !self.planned_jobs().contains(job) {
            return Ok(());
        }
        if self.merge(&job.sources(), usize::MAX)?.is_some() {
            let counter = match job {
                Job::Compact(_) => &self.maintenance.compactions,
                Job::Merge(_) => &self.maintenance.merges,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn merge_policy(&self) -> MergePolicy {
        MergePolicy {
            base_bytes: self.options.seal_bytes as u64,
            factor: self.options.merge_factor,
            max_merge_bytes: self.options.max_merge_bytes,
            deleted_fraction: self.options.compact_deleted_fraction,
        }
    }

    /// Merges and compactions due now. Frozen segments (not written yet) never take part,
    /// nor, under an inverted file whose codes a merge carries (every IVF kind but
    /// `ivf_pq4`), segments whose index build is queued or running: a merge would build
    /// their rows again from scratch, where once indexed it copies their codes. (A merge
    /// under HNSW builds its output's graph anew either way, and retires its sources'
    /// queued builds: it does not wait for them.)
    pub(crate) fn planned_jobs(&self) -> Vec<Job> {
        let carries = matches!(
            self.index_config(),
            IndexConfig::IvfFlat(_)
                | IndexConfig::IvfPq(_)
                | IndexConfig::IvfSq8(_)
                | IndexConfig::IvfOpqPq(_)
        );
        let writer = self.writer.lock();
        let sizes: Vec<SegmentSizes> = self
            .read_state()
            .sealed
            .iter()
            .filter(|e| !e.segment.is_frozen())
            .filter(|e| !carries || !e.segment.build_queued())
            .map(|e| SegmentSizes {
                id: e.segment.id(),
                rows: e.segment.len(),
                deleted: e.deleted.len(),
                reclaimable: writer
                    .persisted_deletes
                    .get(&e.segment.id())
                    .map_or(0, |d| d.len()),
                bytes: e.segment.bytes(),
            })
            .collect();
        drop(writer);
        self.merge_policy().plan(&sizes)
    }

    /// Waits until the worker has no job due or running. Returns at once without a worker.
    pub(crate) fn wait_for_maintenance(&self) {
        loop {
            if !self.maintenance.alive() || self.check_writable().is_err() {
                return;
            }
            self.maintenance.wait_idle();
            if !self.maintenance_due() {
                return;
            }
            self.maintenance.wake();
        }
    }

    /// Whether the worker has a job due that it can run (a seal, or a merge or compaction
    /// whose segments are not waiting for their index builds); `false` without a worker
    /// or after its last job failed.
    pub(crate) fn maintenance_due(&self) -> bool {
        if !self.maintenance.alive()
            || self.check_writable().is_err()
            || self.maintenance.last_error.lock().is_some()
        {
            return false;
        }
        self.growing_over(1) || !self.planned_jobs().is_empty()
    }

    /// The worker's state and counters.
    pub fn maintenance_info(&self) -> MaintenanceInfo {
        let running = self.maintenance.running();
        let due = self.growing_over(1) as usize + self.planned_jobs().len();
        MaintenanceInfo {
            worker: self.maintenance.alive(),
            queue_depth: due.max(running as usize),
            seals: self.maintenance.seals.load(Ordering::Relaxed),
            merges: self.maintenance.merges.load(Ordering::Relaxed),
            compactions: self.maintenance.compactions.load(Ordering::Relaxed),
            graphs_kept: self.maintenance.graphs_kept.load(Ordering::Relaxed),
            ivf_codes_kept: self.maintenance.ivf_codes_kept.load(Ordering::Relaxed),
            last_error: self.maintenance.last_error.lock().clone(),
        }
    }
}
