//! Making appended records durable: group commit, the interval syncer, sticky failure.
//!
//! Group commit, as a state machine over `SyncState` (guarded by `Shared::sync`):
//!
//! ```text
//!  wait for seq S ──► synced_seq >= S ? ──yes──► done
//!                        │ no
//!                        ▼
//!                  leader_active ? ──yes──► sleep on `synced` condvar, then re-check
//!                        │ no
//!                        ▼
//!        become leader (leader_active = true), release the lock,
//!        read (current file, last appended seq T) under the append lock, release it,
//!        fsync the file               ◄── appenders keep appending meanwhile
//!        re-lock: synced_seq = max(synced_seq, T), leader_active = false, wake everyone
//! ```
//!
//! One fsync thus covers every record appended before it started, whichever thread appended
//! it, and waiters whose record it covers return without an fsync of their own.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::error::{io_at, Result, StorageError};

/// The state group commit coordinates on.
#[derive(Debug)]
pub(super) struct SyncState {
    /// Every record with a seq up to this one is on disk.
    pub(super) synced_seq: u64,
    /// Whether some thread is running an fsync on behalf of the others.
    pub(super) leader_active: bool,
}

impl Shared {
    /// Fails with [`StorageError::WalFailed`] once any write or fsync has failed.
    pub(super) fn check_failed(&self) -> Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(StorageError::WalFailed {
            path: self.dir.clone(),
            reason: self.failure.lock().clone().unwrap_or_default(),
        })
    }

    /// Enters the failed state for good; the first reason is kept.
    ///
    /// Why this is final: on Linux, when writeback fails, the kernel reports the error to one
    /// fsync call and may then mark the dirty pages clean, so a retried fsync can succeed while
    /// the data never reached the disk (PostgreSQL lost data this way until 2018, "fsyncgate").
    /// After a failure we therefore cannot know which acknowledged records are on disk. The only
    /// safe answer is to stop accepting writes; reopening the log re-reads what the disk really
    /// holds and checks every checksum.
    pub(super) fn fail(&self, reason: String) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            *failure = Some(reason);
        }
        self.failed.store(true, Ordering::Release);
        drop(failure);
        // Wake waiters so they see the failure instead of sleeping forever.
        let _guard = self.sync.lock();
        self.synced.notify_all();
    }

    /// fsyncs one segment file (data and the length, via `fdatasync`), counting it. A failure
    /// puts the log in the failed state.
    pub(super) fn fsync(&self, file: &File, path: &Path) -> Result<()> {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        #[cfg(test)]
        if self.fail_next_fsync.swap(false, Ordering::AcqRel) {
            let err = std::io::Error::other("injected fsync failure (test hook)");
            self.fail(format!("fsync of {} failed: {err}", path.display()));
            return Err(io_at(path)(err));
        }
        file.sync_data().map_err(|err| {
            self.fail(format!("fsync of {} failed: {err}", path.display()));
            io_at(path)(err)
        })
    }

    /// Returns once every record up to `seq` is on disk, joining a running fsync when one is
    /// under way and leading a new one otherwise (see the module comment).
    pub(super) fn sync_through(&self, seq: u64) -> Result<()> {
        let last_appended = self.last_appended.load(Ordering::Acquire);
        if seq > last_appended {
            return Err(StorageError::InvalidState {
                path: self.dir.clone(),
                reason: format!(
                    "cannot wait for seq {seq}: the last appended record is seq {last_appended}; \
                     pass the ticket returned by append"
                ),
            });
        }
        let mut state = self.sync.lock();
        loop {
            self.check_failed()?;
            if state.synced_seq >= seq {
                return Ok(());
            }
            if state.leader_active {
                self.synced.wait(&mut state);
                continue;
            }
            state.leader_active = true;
            drop(state);

            let outcome = self.sync_current_segment();

            state = self.sync.lock();
            state.leader_active = false;
            if let Ok(covered) = outcome {
                state.synced_seq = state.synced_seq.max(covered);
            }
            self.synced.notify_all();
            // On failure `fsync` has already entered the failed state; the leader reports the
            // I/O error itself, followers see `WalFailed` when they re-check.
            outcome?;
        }
    }

    /// fsyncs the segment being appended to; returns the last seq that fsync covers.
    ///
    /// Only the current segment can hold unsynced records: `rotate` fsyncs a segment before it
    /// seals it.
    fn sync_current_segment(&self) -> Result<u64> {
        let (file, path, covered) = {
            let log = self.log.lock();
            (
                Arc::clone(&log.current),
                log.current_info.path.clone(),
                log.next_seq - 1,
            )
        };
        self.fsync(&file, &path)?;
        Ok(covered)
    }

    /// Records that everything up to `seq` is durable (after an fsync made outside
    /// `sync_through`) and wakes waiters.
    pub(super) fn publish_synced(&self, seq: u64) {
        let mut state = self.sync.lock();
        state.synced_seq = state.synced_seq.max(seq);
        self.synced.notify_all();
    }

    /// The last seq known to be on disk.
    pub(super) fn synced_seq(&self) -> u64 {
        self.sync.lock().synced_seq
    }
}

/// Body of the [`FsyncPolicy::Interval`](super::FsyncPolicy::Interval) thread: every `period`,
/// fsync if anything was appended since the last fsync. Exits when asked to stop or once the
/// log has failed.
pub(super) fn run_interval_syncer(shared: Arc<Shared>, period: Duration) {
    let period = period.max(Duration::from_millis(1));
    loop {
        {
            let mut stop = shared.stop.lock();
            if !*stop {
                shared.stop_signal.wait_for(&mut stop, period);
            }
            if *stop {
                return;
            }
        }
        let last_appended = shared.last_appended.load(Ordering::Acquire);
        if last_appended > shared.synced_seq() && shared.sync_through(last_appended).is_err() {
            // The failure is sticky and reported to every later caller; nothing more to do.
            return;
        }
    }
}
