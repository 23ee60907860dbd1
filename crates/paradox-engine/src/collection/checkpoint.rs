//! Checkpoints: sealing the growing segment into a segment file and persisting sealed
//! deletions and past versions, so the log can be truncated.
//!
//! A checkpoint (a *seal*) runs in three phases, so that no lock is held while files are
//! written. The seal lock is held throughout (one seal at a time, and no merge swaps its
//! result in meanwhile, see `merge.rs`); the writer mutex only in phases 1 and 3:
//!
//! 1. *freeze* (writer mutex + a brief state write lock): rotate the log, so every
//!    applied record lives in files before the current one; turn the growing segment
//!    into a frozen segment (same rows, in RAM, searchable, deletable; `State::freeze_growing`)
//!    and start an empty growing segment; remember `frozen_seq` = the last applied
//!    record, and copy what the files must hold *as of `frozen_seq`*: every sealed
//!    segment's deleted rows, the past versions not yet persisted.
//! 2. *write* (no lock): each frozen segment's rows to `seg-<id>.pdx` (all of them, rows
//!    deleted before the freeze included, so row numbers do not change; the deletes file
//!    marks them), the copied deletions to `deletes-<gen>.pdx` when they differ from the
//!    persisted ones, the copied versions to `history-<gen>.pdx` (temp + fsync + rename
//!    each); open and verify the segment files.
//! 3. *swap* (writer mutex): write the manifest naming them with `applied_seq` =
//!    `frozen_seq`; then replace the frozen segments by the opened files in the state
//!    (their deleted-row sets, which kept taking deletes, stay); remove log files that only
//!    hold records `<= frozen_seq`, and the old deletes file.
//!
//! A crash before the manifest swap leaves the old manifest: the new files are
//! unreferenced (removed at the next open) and the log still holds every record past the
//! old `applied_seq`. A crash after it replays only records past `frozen_seq`: the
//! segment, deletes and history files hold exactly the state those records apply to
//! (the copies were taken under the writer mutex, with nothing applied after
//! `frozen_seq`), so replay rebuilds what readers saw. Leftover old log files are skipped
//! by sequence number. A failed write in phase 2 leaves the frozen segment in the state
//! (still searchable, still covered by the log); the next seal writes it.

use super::{Collection, State, WriterState};
use crate::error::{EngineError, Result};
use crate::manifest::SegmentEntry;
use crate::segment::{
    history_file_name, segment_file_name_for, write_deletes_file, DeletedRows, PendingHistory,
    SealedSegment, StoredMeta,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Deleted rows per segment id.
pub(crate) type DeleteSets = BTreeMap<u64, DeletedRows>;

/// What phase 1 of a seal hands to phases 2 and 3.
struct Frozen {
    frozen_seq: u64,
    segments: Vec<Arc<SealedSegment>>,
    /// Every segment's deleted rows as of `frozen_seq` (non-empty sets only).
    deletes: DeleteSets,
    deletes_changed: bool,
    history: Option<PendingHistory>,
}

impl Collection {
    /// Whether the growing segment reached `times` × the seal threshold (rows or bytes).
    pub(crate) fn growing_over(&self, times: usize) -> bool {
        let state = self.state.read();
        state.growing.len() >= self.options.seal_threshold.saturating_mul(times)
            || state.growing.bytes() >= self.options.seal_bytes.saturating_mul(times)
    }

    /// Seals the growing segment into a segment file and persists sealed deletions, so
    /// the log can be truncated. Safe to call at any time.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        self.seal(true).map(drop)
    }

    /// Seals the growing segment when it reached the threshold (or always, with `force`,
    /// when anything is not yet in files); writes frozen segments a failed seal left.
    /// Returns whether a seal ran.
    pub(crate) fn seal(&self, force: bool) -> Result<bool> {
        let _seal = self.seal_lock.lock();
        let Some(frozen) = self.freeze(force)? else {
            return Ok(false);
        };
        // Phase 2: files, no lock held (on the write pool, below searches' priority).
        let dir = &self.dir;
        let opened = super::indexing::on_write_pool(|| self.write_frozen(&frozen.segments))?;
        let history_file = match &frozen.history {
            Some(pending) => {
                let generation = self.writer.lock().manifest.next_history_generation;
                let file = history_file_name(generation);
                pending.write(&dir.join(&file))?;
                Some(file)
            }
            None => None,
        };

        // Counted as queued for a build from before the swap until `ensure_index` below
        // has queued the real one: a merge planned in between would otherwise take a
        // segment whose index is about to be built (and build its rows again).
        let building: Vec<_> = opened.iter().map(|(_, s)| s.queue_build()).collect();
        // Phase 3: the swap.
        let mut writer = self.writer.lock();
        if self.failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(EngineError::Failed(self.config.name.clone()));
        }
        let mut manifest = writer.manifest.clone();
        if let Some(file) = &history_file {
            manifest.history_files.push(file.clone());
            manifest.next_history_generation += 1;
        }
        let old_deletes = manifest.deletes_file.clone();
        if frozen.deletes_changed {
            manifest.deletes_file =
                write_deletes(dir, &frozen.deletes, &mut manifest.next_deletes_generation)?;
        }
        for (file, segment) in &opened {
            manifest.segments.push(SegmentEntry {
                id: segment.id(),
                file: file.clone(),
                rows: segment.len(),
            });
        }
        manifest.next_segment_id = writer.next_segment_id;
        manifest.applied_seq = frozen.frozen_seq;
        if let Err(e) = manifest.write(dir) {
            // Whether the new manifest reached the disk is unknown: stop writing.
            return self.mark_failed(e);
        }
        writer.manifest = manifest;
        writer.persisted_deletes = frozen.deletes;
        {
            let mut state = self.state.write();
            if let (Some(history), Some(pending)) = (&mut state.history, &frozen.history) {
                history.mark_persisted(pending.upto);
            }
            for (_, segment) in &opened {
                if let Some(entry) = state
                    .sealed
                    .iter_mut()
                    .find(|e| e.segment.id() == segment.id())
                {
                    entry.segment = segment.clone();
                }
            }
        }
        drop(writer);
        for (_, segment) in &opened {
            self.ensure_index(segment);
        }
        if let Err(e) = self.wal.remove_before(frozen.frozen_seq + 1) {
            return self.mark_failed(e);
        }
        if frozen.deletes_changed {
            let current = self.writer.lock().manifest.deletes_file.clone();
            // Clean-up only: an old deletes file left behind is removed at the next open.
            let _ = remove_if_named(dir, old_deletes.as_deref(), current.as_deref());
        }
        self.maintenance.count_seal();
        // A merge planned meanwhile left the new segments out: it may take them now (those
        // no build was queued for; a build wakes the worker when it ends).
        drop(building);
        self.maintenance.wake();
        Ok(true)
    }

    /// Phase 2 of a seal: writes each frozen segment's file, then opens and verifies it
    /// (before the manifest names it: a failure leaves the old manifest in force and the
    /// log intact). Returns the files' names and the opened segments.
    fn write_frozen(
        &self,
        frozen: &[Arc<SealedSegment>],
    ) -> Result<Vec<(String, Arc<SealedSegment>)>> {
        let mut opened = Vec::with_capacity(frozen.len());
        for segment in frozen {
            let file = segment_file_name_for(segment.id());
            let path = self.dir.join(&file);
            let rows: Vec<(StoredMeta<'_>, &[f32])> = (0..segment.len() as u32)
                .map(|row| (segment.stored_meta(row), segment.vector(row)))
                .collect();
            SealedSegment::write(
                &path,
                segment.id(),
                self.config.dimension,
                self.config.metric.as_str(),
                &rows,
            )?;
            let reopened = SealedSegment::open(&path, segment.id(), self.config.dimension)?;
            // Searched through the growing segment's lists until its index is built.
            reopened.set_interim(segment.interim());
            opened.push((file, Arc::new(reopened)));
        }
        Ok(opened)
    }

    /// Phase 1 of a seal (see the module doc); `None` when there is nothing to do.
    fn freeze(&self, force: bool) -> Result<Option<Frozen>> {
        // The next growing segment, made before any lock (see `GrowingSegment::prefaulted`).
        let shape = {
            let state = self.state.read();
            (state.growing.len() > 0).then(|| state.growing_shape())
        };
        let next = shape.map(State::next_growing);
        let mut writer = self.writer.lock();
        if self.failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(EngineError::Failed(self.config.name.clone()));
        }
        let (due, pending_history) = {
            let state = self.state.read();
            let due = state.growing.len() >= self.options.seal_threshold
                || state.growing.bytes() >= self.options.seal_bytes;
            let has_frozen = state.sealed.iter().any(|e| e.segment.is_frozen());
            let pending_history = state.history.as_ref().is_some_and(|h| h.has_pending());
            let idle = state.growing.len() == 0
                && !has_frozen
                && !pending_history
                && state.applied_seq() == writer.manifest.applied_seq
                && delete_sets(&state) == writer.persisted_deletes;
            if idle || !(force || due || has_frozen) {
                return Ok(None);
            }
            (due || force, pending_history)
        };
        if let Err(e) = self.wal.rotate() {
            return self.mark_failed(e);
        }
        let mut state = self.state.write();
        if due && state.growing.len() > 0 {
            let id = writer.next_segment_id;
            writer.next_segment_id += 1;
            state.freeze_growing(id, next);
        }
        let deletes = delete_sets(&state);
        let deletes_changed = deletes != writer.persisted_deletes;
        let history = pending_history
            .then(|| state.history.as_ref().map(|h| h.pending()))
            .flatten()
            .filter(|p| !p.is_empty());
        Ok(Some(Frozen {
            frozen_seq: state.applied_seq(),
            segments: state
                .sealed
                .iter()
                .filter(|e| e.segment.is_frozen())
                .map(|e| e.segment.clone())
                .collect(),
            deletes,
            deletes_changed,
            history,
        }))
    }

    /// Checkpoints, then runs `f` with the manifest and directory while holding the writer
    /// mutex, so no checkpoint or merge changes the files `f` reads.
    pub(crate) fn with_checkpoint<T>(
        &self,
        f: impl FnOnce(&crate::manifest::Manifest, &Path) -> Result<T>,
    ) -> Result<T> {
        self.check_writable()?;
        self.seal(true)?;
        let writer = self.writer.lock();
        f(&writer.manifest, &self.dir)
    }
}

/// Every sealed segment's deleted rows, by segment id (non-empty sets only).
pub(crate) fn delete_sets(state: &super::State) -> DeleteSets {
    state
        .sealed
        .iter()
        .filter(|e| !e.deleted.is_empty())
        .map(|e| (e.segment.id(), e.deleted.clone()))
        .collect()
}

/// Writes `sets` to a new deletes file; `None` if there are none.
pub(crate) fn write_deletes(
    dir: &Path,
    sets: &DeleteSets,
    generation: &mut u64,
) -> Result<Option<String>> {
    let sets: BTreeMap<u64, &DeletedRows> = sets
        .iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(id, rows)| (*id, rows))
        .collect();
    if sets.is_empty() {
        return Ok(None);
    }
    let file = format!("deletes-{:010}.pdx", *generation);
    *generation += 1;
    write_deletes_file(&dir.join(&file), &sets)?;
    Ok(Some(file))
}

pub(crate) fn remove_if_named(dir: &Path, old: Option<&str>, current: Option<&str>) -> Result<()> {
    if let Some(old) = old {
        if Some(old) != current {
            let path = dir.join(old);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// State only writers touch, beside the manifest.
impl WriterState {
    /// Writer state for a manifest just read, whose deletes file held `persisted_deletes`.
    pub(crate) fn new(manifest: crate::manifest::Manifest, persisted_deletes: DeleteSets) -> Self {
        WriterState {
            next_segment_id: manifest.next_segment_id,
            manifest,
            persisted_deletes,
        }
    }
}
