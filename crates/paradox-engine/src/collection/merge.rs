//! Merges: rewriting sealed segments into new ones without their deleted rows — several
//! small segments into one (the background merge policy, `merge_policy.rs`), one segment
//! whose deleted fraction grew too large (background compaction), or everything with a
//! deletion ([`Collection::compact`]).
//!
//! A merge runs beside writes and searches; only its last step takes locks:
//!
//! 1. *plan* (writer mutex, briefly): take the sources' `base` deletions = the rows their
//!    persisted deletes file marks (the state as of the manifest's `applied_seq`).
//! 2. *write* (no lock): the sources' rows minus `base`, in order, to new segment files;
//!    open them and build each one's index (graph or inverted file), so the merged
//!    segment serves searches through its index from the first moment — a segment
//!    rewritten alone into one output keeps its graph, minus the rows dropped
//!    (`Collection::derive_graph`), instead of a new build. Searches keep reading the
//!    sources meanwhile.
//! 3. *swap* (seal lock, writer mutex, then the state write lock): rows of the sources
//!    deleted since `base` (deletes, and upserts that replaced them, during the merge) are
//!    carried to their new rows, both in the live deleted sets and — for those the
//!    persisted deletes file holds by now — in a new deletes file; the manifest swaps
//!    sources for outputs (`applied_seq` unchanged); every id's location is remapped; the
//!    sources are retired and their files removed.
//!
//! Crash safety: the outputs hold every row live as of `base`, a superset of the rows
//! live at the manifest's `applied_seq` when the swap happens (a seal may advance it
//! during the merge; deletions only grow), and the deletes file written at the swap marks
//! exactly the rows deleted as of that `applied_seq`. So after a crash either manifest,
//! old or new, plus log replay past its `applied_seq`, rebuilds the same points. A crash
//! before the swap leaves unreferenced files, removed at the next open. The seal lock
//! keeps a seal's phases 1–3 from straddling a swap (its copied deletions name segments
//! by id).

use super::checkpoint::{remove_if_named, write_deletes, DeleteSets};
use super::state::{Location, SealedEntry};
use super::Collection;
use crate::error::{EngineError, Result};
use crate::manifest::SegmentEntry;
use crate::segment::{segment_file_name_for, DeletedRows, SealedSegment, StoredMeta};
use serde::Serialize;
use std::sync::atomic::Ordering;
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

/// Where a source row went: `NOWHERE`, or output index << 32 | row.
const NOWHERE: u64 = u64::MAX;

/// One merge's sources as of its plan.
struct Source {
    segment: Arc<SealedSegment>,
    base: DeletedRows,
}

impl Collection {
    /// Rewrites sealed segments that hold deleted rows, and merges segments smaller than a
    /// quarter of the seal threshold, so deleted space is reclaimed. Searches continue on
    /// the old segments until the swap; writes continue throughout.
    pub fn compact(&self) -> Result<CompactionReport> {
        self.check_writable()?;
        let _merge = self.merge_lock.lock();
        self.seal(true)?;
        let small = self.options.seal_threshold / 4;
        let (victims, bytes_before, worth_it) = {
            let state = self.state.read();
            let victims: Vec<&SealedEntry> = state
                .sealed
                .iter()
                .filter(|e| !e.segment.is_frozen())
                .filter(|e| !e.deleted.is_empty() || e.segment.len() < small)
                .collect();
            let worth_it = victims.iter().any(|e| !e.deleted.is_empty()) || victims.len() > 1;
            (
                victims.iter().map(|e| e.segment.id()).collect::<Vec<_>>(),
                state
                    .sealed
                    .iter()
                    .map(|e| e.segment.file_len())
                    .sum::<u64>(),
                worth_it,
            )
        };
        let mut report = CompactionReport {
            bytes_before,
            bytes_after: bytes_before,
            ..Default::default()
        };
        if !worth_it {
            return Ok(report);
        }
        if let Some(reclaimed) = self.merge(&victims, self.options.seal_threshold.max(1))? {
            report.segments_rewritten = victims.len();
            report.rows_reclaimed = reclaimed;
        }
        report.bytes_after = self
            .state
            .read()
            .sealed
            .iter()
            .map(|e| e.segment.file_len())
            .sum();
        Ok(report)
    }

    /// Merges the sealed segments `ids` into new segments of at most `chunk_rows` rows
    /// (see the module doc). The caller holds the merge lock. Returns the rows reclaimed,
    /// or `None` when the merge was abandoned (a source is gone, or the collection is
    /// closing).
    pub(crate) fn merge(&self, ids: &[u64], chunk_rows: usize) -> Result<Option<usize>> {
        // Phase 1: plan.
        let sources: Vec<Source> = {
            let writer = self.writer.lock();
            let state = self.state.read();
            let mut sources = Vec::new();
            for id in ids {
                let Some(entry) = state.sealed.iter().find(|e| e.segment.id() == *id) else {
                    return Ok(None);
                };
                if entry.segment.is_frozen() {
                    return Ok(None);
                }
                sources.push(Source {
                    segment: entry.segment.clone(),
                    base: writer
                        .persisted_deletes
                        .get(id)
                        .cloned()
                        .unwrap_or_default(),
                });
            }
            sources
        };
        let reclaimed: usize = sources.iter().map(|s| s.base.len()).sum();
        // Per source, per row: its new place (see `NOWHERE`).
        let mut moved_to: Vec<Vec<u64>> = sources
            .iter()
            .map(|s| vec![NOWHERE; s.segment.len()])
            .collect();

        // Phase 2: write, open and index the outputs.
        let mut rows: Vec<(StoredMeta<'_>, &[f32])> = Vec::new();
        let mut places: Vec<(usize, u32)> = Vec::new();
        for (s, source) in sources.iter().enumerate() {
            for row in 0..source.segment.len() as u32 {
                if !source.base.contains(row) {
                    rows.push((source.segment.stored_meta(row), source.segment.vector(row)));
                    places.push((s, row));
                }
            }
        }
        let one_output = sources.len() == 1 && rows.len() <= chunk_rows.max(1);
        let segments: Vec<Arc<SealedSegment>> = sources.iter().map(|s| s.segment.clone()).collect();
        let mut outputs: Vec<(SegmentEntry, Arc<SealedSegment>)> = Vec::new();
        let abandon = |outputs: &[(SegmentEntry, Arc<SealedSegment>)]| {
            for (entry, segment) in outputs {
                segment.retire();
                remove_segment_files(&self.dir, entry.id);
            }
        };
        for (chunk_index, chunk) in rows.chunks(chunk_rows.max(1)).enumerate() {
            if self.maintenance.stopping() {
                abandon(&outputs);
                return Ok(None);
            }
            let id = {
                let mut writer = self.writer.lock();
                writer.next_segment_id += 1;
                writer.next_segment_id - 1
            };
            let file = segment_file_name_for(id);
            // No engine lock is held here: on the write pool, below searches' priority.
            let written = super::indexing::on_write_pool(|| {
                SealedSegment::write(
                    &self.dir.join(&file),
                    id,
                    self.config.dimension,
                    self.config.metric.as_str(),
                    chunk,
                )
                .and_then(|()| {
                    SealedSegment::open(&self.dir.join(&file), id, self.config.dimension)
                })
            });
            let segment = match written {
                Ok(segment) => Arc::new(segment),
                Err(e) => {
                    abandon(&outputs);
                    remove_segment_files(&self.dir, id);
                    return Err(e);
                }
            };
            // A segment rewritten alone keeps its graph, minus the rows dropped.
            let derived =
                one_output && self.derive_graph(&sources[0].segment, &sources[0].base, &segment);
            let first = chunk_index * chunk_rows.max(1);
            // Segments indexed with the same quantisers keep their codes.
            let carried = !derived
                && self.carry_ivf(&segments, &places[first..first + chunk.len()], &segment);
            if !derived && !carried {
                self.build_index_now(&segment);
            }
            for (row, &(s, source_row)) in places[first..first + chunk.len()].iter().enumerate() {
                moved_to[s][source_row as usize] = ((outputs.len() as u64) << 32) | row as u64;
            }
            outputs.push((
                SegmentEntry {
                    id,
                    file,
                    rows: chunk.len(),
                },
                segment,
            ));
        }
        drop(rows);

        // Phase 3: swap.
        let _seal = self.seal_lock.lock();
        let mut writer = self.writer.lock();
        if self.failed.load(Ordering::Acquire) || self.dropped.load(Ordering::Acquire) {
            abandon(&outputs);
            return Err(EngineError::Failed(self.config.name.clone()));
        }
        // Deletions the persisted deletes file holds by now, carried to the outputs.
        let mut persisted: DeleteSets = writer.persisted_deletes.clone();
        let mut carried = vec![DeletedRows::default(); outputs.len()];
        for (source, moved_to) in sources.iter().zip(&moved_to) {
            if let Some(now) = persisted.remove(&source.segment.id()) {
                carry(moved_to, &now, &mut carried);
            }
        }
        for ((entry, _), rows) in outputs.iter().zip(carried) {
            if !rows.is_empty() {
                persisted.insert(entry.id, rows);
            }
        }
        let mut manifest = writer.manifest.clone();
        let source_ids: Vec<u64> = sources.iter().map(|s| s.segment.id()).collect();
        manifest.segments.retain(|s| !source_ids.contains(&s.id));
        manifest
            .segments
            .extend(outputs.iter().map(|(entry, _)| entry.clone()));
        manifest.next_segment_id = writer.next_segment_id;
        let old_deletes = manifest.deletes_file.clone();
        let written = write_deletes(&self.dir, &persisted, &mut manifest.next_deletes_generation);
        match written {
            Ok(file) => manifest.deletes_file = file,
            Err(e) => {
                abandon(&outputs);
                return Err(e);
            }
        }
        if let Err(e) = manifest.write(&self.dir) {
            return self.mark_failed(e);
        }
        writer.manifest = manifest;
        writer.persisted_deletes = persisted;
        // Where every sealed segment index goes: `Some(source)` for a merged one, else its
        // new index. The writer mutex and seal lock keep the segment list as it is now.
        let (source_of_index, new_index, first_output) = {
            let state = self.state.read();
            let mut source_of_index: Vec<Option<usize>> = Vec::with_capacity(state.sealed.len());
            let mut new_index: Vec<u32> = Vec::with_capacity(state.sealed.len());
            let mut kept = 0u32;
            for entry in &state.sealed {
                let source = source_ids.iter().position(|&id| id == entry.segment.id());
                source_of_index.push(source);
                new_index.push(if source.is_some() { u32::MAX } else { kept });
                kept += u32::from(source.is_none());
            }
            (source_of_index, new_index, kept)
        };
        let relocate = |location| match location {
            Location::Sealed { segment, row } => match source_of_index[segment as usize] {
                Some(s) => {
                    let to = moved_to[s][row as usize];
                    debug_assert_ne!(to, NOWHERE, "a live point's row was dropped");
                    Location::Sealed {
                        segment: first_output + (to >> 32) as u32,
                        row: (to & 0xFFFF_FFFF) as u32,
                    }
                }
                None => Location::Sealed {
                    segment: new_index[segment as usize],
                    row,
                },
            },
            other => other,
        };
        // Every live id's new location, a copy made under the read lock (O(ids), while
        // searches go on); the write lock below only swaps it in.
        let relocated = self.state.read().ids.read().relocated_nums(relocate);
        let replaced = {
            let mut state = self.state.write();
            let mut live = vec![DeletedRows::default(); outputs.len()];
            let mut kept: Vec<SealedEntry> = Vec::with_capacity(state.sealed.len());
            for (index, entry) in std::mem::take(&mut state.sealed).into_iter().enumerate() {
                match source_of_index[index] {
                    Some(s) => {
                        carry(&moved_to[s], &entry.deleted, &mut live);
                        entry.segment.retire();
                    }
                    None => kept.push(entry),
                }
            }
            debug_assert_eq!(kept.len() as u32, first_output);
            for ((_, segment), deleted) in outputs.iter().zip(live) {
                kept.push(SealedEntry {
                    segment: segment.clone(),
                    deleted,
                });
            }
            state.sealed = kept;
            state
                .ids
                .get_mut()
                .install_nums(relocated, Some(&mut { relocate }))
        };
        // The old map is freed after the lock is released.
        drop(replaced);
        drop(writer);
        drop(_seal);
        for (_, segment) in &outputs {
            // The index config may have changed during the build: fix it in the background.
            self.ensure_index(segment);
        }
        // Clean-up only: files the manifest no longer names are also removed at open.
        for source in &sources {
            remove_segment_files(&self.dir, source.segment.id());
        }
        let current = self.writer.lock().manifest.deletes_file.clone();
        let _ = remove_if_named(&self.dir, old_deletes.as_deref(), current.as_deref());
        Ok(Some(reclaimed))
    }
}

/// Marks in `outputs` the new rows (per `moved_to`) of a source's rows in `deleted` that
/// were moved (those outside its `base`).
fn carry(moved_to: &[u64], deleted: &DeletedRows, outputs: &mut [DeletedRows]) {
    for row in deleted.rows() {
        let to = moved_to.get(row as usize).copied().unwrap_or(NOWHERE);
        if to != NOWHERE {
            outputs[(to >> 32) as usize].insert((to & 0xFFFF_FFFF) as u32);
        }
    }
}

/// Removes segment `id`'s file and its index files.
fn remove_segment_files(dir: &std::path::Path, id: u64) {
    let _ = std::fs::remove_file(dir.join(segment_file_name_for(id)));
    for name in crate::segment::index_file_names(id) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}
