//! Checkpoints (sealing the growing segment) and compaction (rewriting sealed segments
//! without their deleted rows).
//!
//! Crash safety of a checkpoint, step by step (the writer mutex is held throughout, so no
//! write interleaves; readers keep searching the old state until the final swap):
//!
//! 1. rotate the log: every applied record now lives in files before the current one;
//! 2. write the growing segment's live rows to `seg-<id>.pdx` (temp + fsync + rename);
//! 3. write the sealed segments' deleted rows to `deletes-<gen>.pdx` (same way);
//! 4. swap the manifest naming them with `applied_seq` = last applied record;
//! 5. remove log files that only hold records `<= applied_seq`, and the old deletes file.
//!
//! A crash before 4 leaves the old manifest: the new files are unreferenced (removed at
//! the next open) and the log still holds every record. A crash after 4 replays only
//! records past `applied_seq`; leftover old log files are skipped by sequence number.

use super::state::{Location, SealedEntry, State};
use super::{Collection, WriterState};
use crate::error::{EngineError, Result};
use crate::manifest::SegmentEntry;
use crate::point::RowMeta;
use crate::segment::{segment_file_name_for, write_deletes_file, SealedSegment};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    /// Segments rewritten.
    pub segments_rewritten: usize,
    /// Deleted rows whose space was reclaimed.
    pub rows_reclaimed: usize,
    /// Bytes on disk before and after.
    pub bytes_before: u64,
    /// Bytes on disk after.
    pub bytes_after: u64,
}

impl Collection {
    /// Seals the growing segment if it reached the threshold.
    pub(crate) fn maybe_checkpoint(&self, writer: &mut WriterState) -> Result<()> {
        let due = self.state.read().growing.len() >= self.options.seal_threshold;
        if due {
            self.checkpoint(writer)?;
        }
        Ok(())
    }

    /// Seals the growing segment into a segment file and persists sealed deletions, so
    /// the log can be truncated. Safe to call at any time.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        let mut writer = self.writer.lock();
        self.checkpoint(&mut writer)
    }

    pub(crate) fn checkpoint(&self, writer: &mut WriterState) -> Result<()> {
        let dir = &self.dir;
        let (new_segment, applied_seq, deletes_dirty, history_rows) = {
            let state = self.state.read();
            if state.growing.len() == 0
                && !state.sealed_deletes_dirty
                && state.applied_seq == writer.manifest.applied_seq
            {
                return Ok(());
            }
            if let Err(e) = self.wal.rotate() {
                return self.mark_failed(e);
            }
            let new_segment = if state.growing.live() > 0 {
                let id = writer.manifest.next_segment_id;
                let file = segment_file_name_for(id);
                let rows: Vec<(&RowMeta, &[f32])> = state
                    .growing
                    .live_rows()
                    .map(|(_, meta, vector)| (meta, vector))
                    .collect();
                SealedSegment::write(
                    &dir.join(&file),
                    id,
                    self.config.dimension,
                    self.config.metric.as_str(),
                    &rows,
                )?;
                Some((id, file, state.growing.live()))
            } else {
                None
            };
            // Past versions added since the last checkpoint: written before the log that
            // rebuilds them may be truncated.
            let history_rows = match &state.history {
                Some(history) if history.has_pending() => {
                    let generation = writer.manifest.next_history_generation;
                    let file = crate::segment::history_file_name(generation);
                    history.write_pending(&dir.join(&file))?;
                    Some((file, history.len()))
                }
                _ => None,
            };
            (
                new_segment,
                state.applied_seq,
                state.sealed_deletes_dirty || state.growing.has_deletions(),
                history_rows,
            )
        };

        let mut manifest = writer.manifest.clone();
        if let Some((file, _)) = &history_rows {
            manifest.history_files.push(file.clone());
            manifest.next_history_generation += 1;
        }
        let old_deletes = manifest.deletes_file.clone();
        if deletes_dirty {
            manifest.deletes_file = self.write_deletes(&mut manifest.next_deletes_generation)?;
        }
        if let Some((id, file, rows)) = &new_segment {
            manifest.segments.push(SegmentEntry {
                id: *id,
                file: file.clone(),
                rows: *rows,
            });
            manifest.next_segment_id = id + 1;
        }
        manifest.applied_seq = applied_seq;
        // Verify the new segment before the manifest names it: a failure here leaves the
        // old manifest in force and the log intact.
        let opened = match &new_segment {
            Some((id, file, _)) => Some(SealedSegment::open(
                &dir.join(file),
                *id,
                self.config.dimension,
            )?),
            None => None,
        };
        if let Err(e) = manifest.write(dir) {
            // Whether the new manifest reached the disk is unknown: stop writing.
            return self.mark_failed(e);
        }
        writer.manifest = manifest;

        let opened = opened.map(Arc::new);
        if let Some(segment) = &opened {
            self.ensure_index(segment);
        }
        {
            let mut state = self.state.write();
            if let (Some(history), Some((_, rows))) = (&mut state.history, &history_rows) {
                history.mark_persisted(*rows);
            }
            if let Some(segment) = opened {
                let index = state.sealed.len() as u32;
                let moved: Vec<(u32, crate::point::PointId)> = state
                    .growing
                    .live_rows()
                    .map(|(row, meta, _)| (row, meta.id.clone()))
                    .collect();
                for (new_row, (_, id)) in moved.into_iter().enumerate() {
                    state.ids.insert(
                        id,
                        Location::Sealed {
                            segment: index,
                            row: new_row as u32,
                        },
                    );
                }
                state.sealed.push(SealedEntry {
                    segment,
                    deleted: Default::default(),
                });
            }
            state.growing = crate::segment::GrowingSegment::new(self.config.dimension);
            state.sealed_deletes_dirty = false;
        }
        if let Err(e) = self.wal.remove_before(applied_seq + 1) {
            return self.mark_failed(e);
        }
        if deletes_dirty {
            // Clean-up only: an old deletes file left behind is removed at the next open.
            let _ = remove_if_named(
                dir,
                old_deletes.as_deref(),
                writer.manifest.deletes_file.as_deref(),
            );
        }
        Ok(())
    }

    /// Writes the current sealed deletions to a new deletes file; `None` if there are none.
    fn write_deletes(&self, generation: &mut u64) -> Result<Option<String>> {
        let state = self.state.read();
        let sets: BTreeMap<u64, _> = state
            .sealed
            .iter()
            .filter(|e| !e.deleted.is_empty())
            .map(|e| (e.segment.id(), &e.deleted))
            .collect();
        if sets.is_empty() {
            return Ok(None);
        }
        let file = format!("deletes-{:010}.pdx", *generation);
        *generation += 1;
        write_deletes_file(&self.dir.join(&file), &sets)?;
        Ok(Some(file))
    }

    /// Rewrites sealed segments that hold deleted rows, and merges segments smaller than a
    /// quarter of the seal threshold, so deleted space is reclaimed. Searches continue on
    /// the old segments until the swap.
    pub fn compact(&self) -> Result<CompactionReport> {
        self.check_writable()?;
        let mut writer = self.writer.lock();
        self.checkpoint(&mut writer)?;
        let small = self.options.seal_threshold / 4;
        let (victims, bytes_before) = {
            let state = self.state.read();
            let victims: Vec<usize> = (0..state.sealed.len())
                .filter(|&i| {
                    let e = &state.sealed[i];
                    !e.deleted.is_empty() || e.segment.len() < small
                })
                .collect();
            (
                victims,
                state
                    .sealed
                    .iter()
                    .map(|e| e.segment.file_len())
                    .sum::<u64>(),
            )
        };
        let mut report = CompactionReport {
            bytes_before,
            bytes_after: bytes_before,
            ..Default::default()
        };
        let worth_it = {
            let state = self.state.read();
            victims.iter().any(|&i| !state.sealed[i].deleted.is_empty()) || victims.len() > 1
        };
        if !worth_it {
            return Ok(report);
        }

        // Write the replacement segments from the victims' live rows, in order.
        let mut manifest = writer.manifest.clone();
        let mut written: Vec<SegmentEntry> = Vec::new();
        {
            let state = self.state.read();
            let live: Vec<(&RowMeta, &[f32])> = victims
                .iter()
                .flat_map(|&i| {
                    let e = &state.sealed[i];
                    (0..e.segment.len() as u32)
                        .filter(move |r| !e.deleted.contains(*r))
                        .map(move |r| (e.segment.meta(r), e.segment.vector(r)))
                })
                .collect();
            report.rows_reclaimed = victims.iter().map(|&i| state.sealed[i].deleted.len()).sum();
            report.segments_rewritten = victims.len();
            for chunk in live.chunks(self.options.seal_threshold.max(1)) {
                let id = manifest.next_segment_id;
                manifest.next_segment_id += 1;
                let file = segment_file_name_for(id);
                SealedSegment::write(
                    &self.dir.join(&file),
                    id,
                    self.config.dimension,
                    self.config.metric.as_str(),
                    chunk,
                )?;
                written.push(SegmentEntry {
                    id,
                    file,
                    rows: chunk.len(),
                });
            }
        }
        let victim_ids: Vec<u64> = {
            let state = self.state.read();
            victims
                .iter()
                .map(|&i| state.sealed[i].segment.id())
                .collect()
        };
        manifest.segments.retain(|s| !victim_ids.contains(&s.id));
        manifest.segments.extend(written.iter().cloned());
        let old_deletes = manifest.deletes_file.take();

        // Build the new state off to the side, then swap it in.
        let mut opened = Vec::new();
        for entry in &written {
            opened.push(SealedSegment::open(
                &self.dir.join(&entry.file),
                entry.id,
                self.config.dimension,
            )?);
        }
        // Every segment with deleted rows is a victim, so no live segment has any now.
        manifest.deletes_file = None;
        if let Err(e) = manifest.write(&self.dir) {
            return self.mark_failed(e);
        }
        writer.manifest = manifest;
        let mut state = self.state.write();
        let mut kept: Vec<SealedEntry> = Vec::new();
        let mut old_files = Vec::new();
        for (i, entry) in std::mem::take(&mut state.sealed).into_iter().enumerate() {
            if victims.contains(&i) {
                entry.segment.retire();
                old_files.push(entry.segment.path());
            } else {
                kept.push(entry);
            }
        }
        for segment in opened {
            let segment = Arc::new(segment);
            self.ensure_index(&segment);
            kept.push(SealedEntry {
                segment,
                deleted: Default::default(),
            });
        }
        state.sealed = kept;
        state.sealed_deletes_dirty = false;
        rebuild_locations(&mut state);
        drop(state);
        // Clean-up only: files the manifest no longer names are also removed at open.
        for path in old_files {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("hnsw"));
        }
        let _ = remove_if_named(&self.dir, old_deletes.as_deref(), None);
        report.bytes_after = self
            .state
            .read()
            .sealed
            .iter()
            .map(|e| e.segment.file_len())
            .sum();
        Ok(report)
    }
}

/// Recomputes every live id's location after the sealed list changed. The growing segment
/// is empty here (compaction checkpoints first).
fn rebuild_locations(state: &mut State) {
    let mut ids = BTreeMap::new();
    for (index, entry) in state.sealed.iter().enumerate() {
        for row in 0..entry.segment.len() as u32 {
            if !entry.deleted.contains(row) {
                ids.insert(
                    entry.segment.meta(row).id.clone(),
                    Location::Sealed {
                        segment: index as u32,
                        row,
                    },
                );
            }
        }
    }
    state.ids = ids;
}

fn remove_if_named(dir: &std::path::Path, old: Option<&str>, current: Option<&str>) -> Result<()> {
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

impl Collection {
    /// Checkpoints, then runs `f` with the manifest and directory while holding the writer
    /// mutex, so no checkpoint or compaction changes the files `f` reads.
    pub(crate) fn with_checkpoint<T>(
        &self,
        f: impl FnOnce(&crate::manifest::Manifest, &std::path::Path) -> Result<T>,
    ) -> Result<T> {
        self.check_writable()?;
        let mut writer = self.writer.lock();
        self.checkpoint(&mut writer)?;
        f(&writer.manifest, &self.dir)
    }
}
