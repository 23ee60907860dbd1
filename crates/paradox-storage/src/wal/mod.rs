//! The write-ahead log: numbered, checksummed records appended to segment files.
//!
//! A log is a directory of segments `wal-{first_seq:020}.log`. Records get consecutive
//! sequence numbers starting at 1 and continuing across segments and reopenings. Only the last
//! segment (the *current* one) is appended to; [`Wal::rotate`] seals it and starts a new one, and
//! [`Wal::remove_before`] deletes sealed segments once a checkpoint no longer needs them.
//!
//! Durability is layered: [`Wal::append`] returns after `write(2)`, so a process crash cannot
//! lose the record; [`Wal::wait_durable`] and [`Wal::sync`] return after an fsync covers it, so
//! a power loss cannot either. [`FsyncPolicy`] says which of the two `wait_durable` waits for.

mod durability;
mod policy;
mod recovery;
mod replay;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use self::durability::{run_interval_syncer, SyncState};
use self::recovery::SegmentInfo;
use self::segment::{create_segment, encode_record, HEADER_LEN, MAX_RECORD_LEN, RECORD_HEADER_LEN};
use crate::atomic::fsync_dir;
use crate::error::{io_at, Result, StorageError};

pub use self::policy::{FsyncPolicy, DEFAULT_SYNC_INTERVAL};
pub use self::recovery::WalRecovery;
pub use self::replay::ReplayError;

/// The largest payload a single record may carry (1 GiB).
pub const MAX_WAL_RECORD_LEN: u64 = MAX_RECORD_LEN;

/// Proof of an append: the seq of the (last) record written. Pass it to
/// [`Wal::wait_durable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalTicket {
    /// The seq of the record, or of the last record of an [`Wal::append_many`] batch.
    pub seq: u64,
}

/// Counters for metrics. All counts are since [`Wal::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalStats {
    /// Records appended.
    pub records_appended: u64,
    /// Bytes written for appended records, framing included.
    pub bytes_appended: u64,
    /// fsync calls made on segment files.
    pub fsyncs: u64,
    /// `next_seq - 1`: the seq of the last record appended (0 on a new log).
    pub last_seq: u64,
    /// Every record up to this seq is known to be on disk. `last_seq - durable_seq` is the lag.
    pub durable_seq: u64,
    /// Total bytes of the live segment files.
    pub size_bytes: u64,
}

/// A write-ahead log. `Send + Sync`: share it by reference or `Arc` between appending threads.
///
/// ```
/// use paradox_storage::{FsyncPolicy, Wal};
/// # let dir = tempfile::tempdir().unwrap();
/// let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Always)?;
/// assert_eq!(recovery.last_seq, None);
/// let ticket = wal.append(b"insert point 7")?;
/// wal.wait_durable(&ticket)?; // on disk now
/// drop(wal);
///
/// let (wal, recovery) = Wal::open(dir.path(), FsyncPolicy::Always)?;
/// assert_eq!(recovery.last_seq, Some(1));
/// let mut seen = Vec::new();
/// wal.replay(1, |seq, payload| {
///     seen.push((seq, payload.to_vec()));
///     Ok::<(), std::convert::Infallible>(())
/// }).unwrap();
/// assert_eq!(seen, vec![(1, b"insert point 7".to_vec())]);
/// # Ok::<(), paradox_storage::StorageError>(())
/// ```
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    /// The [`FsyncPolicy::Interval`] thread, stopped and joined on drop.
    syncer: Option<JoinHandle<()>>,
}

/// State shared between the `Wal` handle and its interval thread.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    policy: FsyncPolicy,
    /// The append lock: held while a record is framed and written, and for segment changes.
    log: Mutex<Log>,
    /// Group-commit state; never locked before `log` by the same thread (lock order: log, sync).
    sync: Mutex<SyncState>,
    /// Signalled whenever `sync.synced_seq` advances, a leader finishes, or the log fails.
    synced: Condvar,
    /// Set once a write or fsync fails; see `Shared::fail` for why it is never cleared.
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// The seq of the last record written to the file (0 when none).
    last_appended: AtomicU64,
    records_appended: AtomicU64,
    bytes_appended: AtomicU64,
    fsyncs: AtomicU64,
    /// Tells the interval thread to exit.
    stop: Mutex<bool>,
    stop_signal: Condvar,
    /// Test hook: the next fsync fails as if the disk had reported an error.
    #[cfg(test)]
    fail_next_fsync: AtomicBool,
}

/// The segments and the append position, guarded by `Shared::log`.
#[derive(Debug)]
struct Log {
    /// Sealed segments, oldest first. They are never written again.
    sealed: VecDeque<SegmentInfo>,
    sealed_bytes: u64,
    /// The segment being appended to, opened in append mode. An `Arc` so that a group-commit
    /// leader can fsync it without holding the append lock.
    current: Arc<File>,
    current_info: SegmentInfo,
    next_seq: u64,
    /// Reused buffer in which records are framed, so that each append is one `write(2)`.
    scratch: Vec<u8>,
}

/// Above this capacity the framing buffer is released after use instead of kept.
const SCRATCH_KEEP_BYTES: usize = 8 << 20;

impl Wal {
    /// Opens (creating if needed) the log in `dir`, recovering it as described in
    /// [`WalRecovery`] and the `recovery` rules: a torn tail of the last segment is cut off and
    /// reported; damage anywhere else, or a gap in sequence numbers, is a
    /// [`StorageError::Corrupt`] error.
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<(Wal, WalRecovery)> {
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_at(dir))?;
            // Make the new directory's entry durable, or a power loss could drop the whole
            // log (acknowledged `Always` writes included) with it.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::fsync_dir(parent)?;
            }
        }
        let recovered = recovery::recover(dir)?;
        let mut sealed: VecDeque<SegmentInfo> = recovered.segments.into();
        let current_info = sealed
            .pop_back()
            .ok_or_else(|| StorageError::InvalidState {
                path: dir.to_path_buf(),
                reason: "recovery produced no segment to append to".into(),
            })?;
        let current = OpenOptions::new()
            .append(true)
            .open(&current_info.path)
            .map_err(io_at(&current_info.path))?;
        let last_seq = recovered.next_seq - 1;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            policy,
            log: Mutex::new(Log {
                sealed_bytes: sealed.iter().map(|s| s.len).sum(),
                sealed,
                current: Arc::new(current),
                current_info,
                next_seq: recovered.next_seq,
                scratch: Vec::new(),
            }),
            sync: Mutex::new(SyncState {
                synced_seq: 0,
                leader_active: false,
            }),
            synced: Condvar::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            last_appended: AtomicU64::new(last_seq),
            records_appended: AtomicU64::new(0),
            bytes_appended: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            stop: Mutex::new(false),
            stop_signal: Condvar::new(),
            #[cfg(test)]
            fail_next_fsync: AtomicBool::new(false),
        });
        // What survived may still sit in the page cache (the previous process crashed, or used
        // `Never`). One fsync makes `durable_seq` honest from the start.
        shared.sync_through(last_seq)?;

        let syncer = match policy {
            FsyncPolicy::Interval(period) => {
                let thread_shared = Arc::clone(&shared);
                let handle = std::thread::Builder::new()
                    .name("paradox-wal-sync".into())
                    .spawn(move || run_interval_syncer(thread_shared, period))
                    .map_err(io_at(dir))?;
                Some(handle)
            }
            FsyncPolicy::Always | FsyncPolicy::Never => None,
        };
        Ok((Wal { shared, syncer }, recovered.report))
    }

    /// Appends one record; see [`append_many`](Self::append_many).
    pub fn append(&self, payload: &[u8]) -> Result<WalTicket> {
        self.append_many(&[payload])
    }

    /// Appends records with consecutive seqs, in one `write(2)`, and returns the ticket of the
    /// last one. The records are in the file when this returns (a process crash cannot lose
    /// them); call [`wait_durable`](Self::wait_durable) to survive power loss. Concurrent
    /// callers never interleave: a batch occupies consecutive seqs and bytes.
    ///
    /// The batch is not atomic across a crash: if the process dies during this call, recovery
    /// may keep a prefix of the batch (each record is checked on its own). The call did not
    /// return, so none of it was acknowledged; encode an all-or-nothing batch as one record.
    ///
    /// An empty batch writes nothing and returns the ticket of the last record in the log.
    pub fn append_many(&self, payloads: &[&[u8]]) -> Result<WalTicket> {
        for payload in payloads {
            check_record_len(&self.shared.dir, payload.len() as u64)?;
        }
        let mut log = self.shared.log.lock();
        self.shared.check_failed()?;
        let Log {
            current,
            current_info,
            next_seq,
            scratch,
            ..
        } = &mut *log;
        let first_seq = *next_seq;
        if payloads.is_empty() {
            return Ok(WalTicket { seq: first_seq - 1 });
        }
        let last_seq = first_seq + payloads.len() as u64 - 1;

        scratch.clear();
        let framed_len: usize = payloads
            .iter()
            .map(|p| RECORD_HEADER_LEN as usize + p.len())
            .sum();
        scratch.reserve(framed_len);
        for (seq, payload) in (first_seq..).zip(payloads) {
            encode_record(scratch, seq, payload);
        }
        if let Err(err) = (&**current).write_all(scratch) {
            // Part of the batch may be in the file; appending after it would bury a torn record
            // in the middle of the segment. Stop here; reopening cuts the partial record off.
            self.shared.fail(format!(
                "write to {} failed: {err}",
                current_info.path.display()
            ));
            return Err(io_at(&current_info.path)(err));
        }
        current_info.len += scratch.len() as u64;
        *next_seq = last_seq + 1;
        if scratch.capacity() > SCRATCH_KEEP_BYTES {
            *scratch = Vec::new();
        }
        self.shared.last_appended.store(last_seq, Ordering::Release);
        drop(log);

        let stats = &self.shared;
        stats
            .records_appended
            .fetch_add(payloads.len() as u64, Ordering::Relaxed);
        stats
            .bytes_appended
            .fetch_add(framed_len as u64, Ordering::Relaxed);
        Ok(WalTicket { seq: last_seq })
    }

    /// Waits until the ticket's record is durable, as far as the policy promises:
    /// with [`FsyncPolicy::Always`] this returns after an fsync that covers it (group commit:
    /// concurrent waiters share fsyncs); with `Interval` and `Never` it returns at once.
    /// Fails once the log has failed, whatever the policy.
    pub fn wait_durable(&self, ticket: &WalTicket) -> Result<()> {
        self.shared.check_failed()?;
        match self.shared.policy {
            FsyncPolicy::Always => self.shared.sync_through(ticket.seq),
            FsyncPolicy::Interval(_) | FsyncPolicy::Never => Ok(()),
        }
    }

    /// fsyncs everything appended so far, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        let last = self.shared.last_appended.load(Ordering::Acquire);
        self.shared.sync_through(last)
    }

    /// Seals the current segment (after fsyncing it) and starts `wal-{next_seq}.log`; returns
    /// `next_seq`, the first seq of the new segment. Does nothing when the current segment holds
    /// no records. Appenders wait while this runs (two fsyncs).
    pub fn rotate(&self) -> Result<u64> {
        let mut log = self.shared.log.lock();
        self.shared.check_failed()?;
        let next_seq = log.next_seq;
        if next_seq == log.current_info.first_seq {
            return Ok(next_seq);
        }
        // The sealed segment must be complete on disk before a later one exists: recovery
        // treats damage in a non-last segment as fatal, so a torn tail must never be sealed.
        self.shared.fsync(&log.current, &log.current_info.path)?;
        let (file, path) = create_segment(&self.shared.dir, next_seq)?;
        let sealed = std::mem::replace(
            &mut log.current_info,
            SegmentInfo {
                first_seq: next_seq,
                path,
                len: HEADER_LEN,
            },
        );
        log.current = Arc::new(file);
        log.sealed_bytes += sealed.len;
        log.sealed.push_back(sealed);
        drop(log);
        self.shared.publish_synced(next_seq - 1);
        Ok(next_seq)
    }

    /// Deletes sealed segments all of whose records have seq `< seq`, oldest first, and
    /// fsyncs the directory. The current segment is never deleted.
    ///
    /// Deleting oldest first keeps the log gap-free if a crash interrupts this.
    pub fn remove_before(&self, seq: u64) -> Result<()> {
        let mut removed = 0;
        {
            let mut log = self.shared.log.lock();
            while let Some(oldest) = log.sealed.front() {
                let end = log
                    .sealed
                    .get(1)
                    .map_or(log.current_info.first_seq, |next| next.first_seq);
                if end > seq {
                    break;
                }
                match fs::remove_file(&oldest.path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == ErrorKind::NotFound => {}
                    Err(err) => return Err(io_at(&oldest.path)(err)),
                }
                if let Some(gone) = log.sealed.pop_front() {
                    log.sealed_bytes -= gone.len;
                }
                removed += 1;
            }
        }
        if removed > 0 {
            fsync_dir(&self.shared.dir)?;
        }
        Ok(())
    }

    /// The seq the next appended record will get.
    pub fn next_seq(&self) -> u64 {
        self.shared.log.lock().next_seq
    }

    /// Makes the next appended record get `seq` (≥ 1). Allowed only while the log holds no
    /// records, e.g. when the engine's manifest says seq 100 was applied and the log was
    /// emptied by a checkpoint or lost; the log then continues at 101 instead of restarting
    /// at 1.
    ///
    /// Crash safety: the empty segments are deleted before the new one is created, so a crash
    /// in between leaves an empty directory (a log restarting at 1), never a gap.
    pub fn set_next_seq(&self, seq: u64) -> Result<()> {
        let dir = &self.shared.dir;
        if seq == 0 {
            return Err(StorageError::InvalidState {
                path: dir.clone(),
                reason: "WAL seqs start at 1; set_next_seq(0) is meaningless".into(),
            });
        }
        let mut log = self.shared.log.lock();
        self.shared.check_failed()?;
        let oldest = log
            .sealed
            .front()
            .map_or(log.current_info.first_seq, |s| s.first_seq);
        if log.next_seq != oldest {
            return Err(StorageError::InvalidState {
                path: dir.clone(),
                reason: format!(
                    "set_next_seq({seq}) needs an empty log, but it holds records {oldest}..={}; \
                     checkpoint, rotate and remove_before first",
                    log.next_seq - 1
                ),
            });
        }
        if log.next_seq == seq {
            return Ok(());
        }
        for path in log
            .sealed
            .iter()
            .map(|s| &s.path)
            .chain([&log.current_info.path])
        {
            fs::remove_file(path).map_err(io_at(path))?;
        }
        fsync_dir(dir)?;
        let (file, path) = create_segment(dir, seq).inspect_err(|err| {
            self.shared.fail(format!(
                "could not create the WAL segment after set_next_seq: {err}"
            ));
        })?;
        log.sealed.clear();
        log.sealed_bytes = 0;
        log.current = Arc::new(file);
        log.current_info = SegmentInfo {
            first_seq: seq,
            path,
            len: HEADER_LEN,
        };
        log.next_seq = seq;
        self.shared.last_appended.store(seq - 1, Ordering::Release);
        let mut state = self.shared.sync.lock();
        state.synced_seq = seq - 1;
        Ok(())
    }

    /// Total bytes of the live segment files.
    pub fn size_bytes(&self) -> u64 {
        let log = self.shared.log.lock();
        log.sealed_bytes + log.current_info.len
    }

    /// The fsync policy the log was opened with.
    pub fn policy(&self) -> FsyncPolicy {
        self.shared.policy
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Counters for metrics.
    pub fn stats(&self) -> WalStats {
        let (last_seq, size_bytes) = {
            let log = self.shared.log.lock();
            (log.next_seq - 1, log.sealed_bytes + log.current_info.len)
        };
        let shared = &self.shared;
        WalStats {
            records_appended: shared.records_appended.load(Ordering::Relaxed),
            bytes_appended: shared.bytes_appended.load(Ordering::Relaxed),
            fsyncs: shared.fsyncs.load(Ordering::Relaxed),
            last_seq,
            durable_seq: shared.synced_seq(),
            size_bytes,
        }
    }

    /// Test hook: makes the next fsync fail as a failing disk would.
    #[cfg(test)]
    fn inject_fsync_failure(&self) {
        self.shared.fail_next_fsync.store(true, Ordering::Release);
    }
}

/// Refuses payloads the format cannot frame (the length field is checked against
/// [`MAX_WAL_RECORD_LEN`] on reading, so a longer record would read back as damage).
fn check_record_len(dir: &Path, len: u64) -> Result<()> {
    if len > MAX_RECORD_LEN {
        return Err(StorageError::RecordTooLarge {
            path: dir.to_path_buf(),
            len,
            max: MAX_RECORD_LEN,
        });
    }
    Ok(())
}

impl Drop for Wal {
    /// Stops the interval thread and, under [`FsyncPolicy::Interval`], makes a last fsync so
    /// that a clean shutdown loses nothing. Errors cannot be reported from here; call
    /// [`Wal::sync`] before dropping to see them.
    fn drop(&mut self) {
        if let Some(handle) = self.syncer.take() {
            *self.shared.stop.lock() = true;
            self.shared.stop_signal.notify_all();
            let _ = handle.join();
            let _ = self.sync();
        }
    }
}
