//! Past versions of points, kept by collections created with `history: true`.
//!
//! When such a collection replaces or deletes a point, the version that stops being
//! current is appended here with the time it stopped (`valid_to`); its own `updated_at`
//! is when it started. The current versions stay where they are (growing and sealed
//! segments), so nothing on the live read path changes. A version is visible at time `t`
//! when `updated_at <= t < valid_to`.
//!
//! Versions are held in RAM and written at each checkpoint as an append-only history
//! file (`history-<gen>.pdx`) holding the versions added since the previous one; the
//! manifest lists them in order. Versions added after the last checkpoint are rebuilt by
//! log replay, like the growing segment.

use crate::codec::{read_meta, write_meta, Reader, Writer};
use crate::error::{EngineError, Result};
use crate::point::{PointId, RowMeta, Versions};
use paradox_storage::{Container, ContainerWriter};
use std::collections::HashMap;
use std::path::Path;

const HISTORY_MAGIC: [u8; 8] = *b"PDXHIST\0";
const HISTORY_VERSION: u32 = 1;
const TAG_HEADER: u32 = 1;
const TAG_VECTORS: u32 = 2;
const TAG_METAS: u32 = 3;

/// Name of the history file of generation `generation`.
pub(crate) fn history_file_name(generation: u64) -> String {
    format!("history-{generation:010}.pdx")
}

/// Versions not yet in a history file, copied out of a [`History`].
#[derive(Debug)]
pub(crate) struct PendingHistory {
    dim: usize,
    metas: Vec<RowMeta>,
    vectors: Vec<f32>,
    valid_to: Vec<i64>,
    /// The history's length when copied: pass it to [`History::mark_persisted`] once the
    /// file is named by the manifest.
    pub upto: usize,
}

impl PendingHistory {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Writes the versions to `path` atomically (a history file).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut header = Vec::new();
        let mut w = Writer(&mut header);
        w.u32(self.dim as u32);
        w.u64(self.metas.len() as u64);
        let mut metas = Vec::new();
        let mut w = Writer(&mut metas);
        for (meta, valid_to) in self.metas.iter().zip(&self.valid_to) {
            write_meta(&mut w, meta);
            w.i64(*valid_to);
        }
        let mut vectors = Vec::new();
        Writer(&mut vectors).f32s(&self.vectors);
        let mut writer = ContainerWriter::create_temp(path, HISTORY_MAGIC, HISTORY_VERSION)?;
        writer.add_section(TAG_HEADER, &header)?;
        writer.add_section(TAG_VECTORS, &vectors)?;
        writer.add_section(TAG_METAS, &metas)?;
        writer.finish()?;
        Ok(())
    }
}

/// Superseded and deleted versions, oldest appended first.
#[derive(Debug)]
pub(crate) struct History {
    dim: usize,
    metas: Vec<RowMeta>,
    vectors: Vec<f32>,
    valid_to: Vec<i64>,
    /// Rows of each id, in the order they were appended.
    by_id: HashMap<PointId, Vec<u32>>,
    /// Rows `0..persisted` are in the history files the manifest names.
    persisted: usize,
}

impl History {
    pub fn new(dim: usize) -> Self {
        History {
            dim,
            metas: Vec::new(),
            vectors: Vec::new(),
            valid_to: Vec::new(),
            by_id: HashMap::new(),
            persisted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.metas.len()
    }

    /// Records that the version (`meta`, `vector`) stopped being current at `valid_to`.
    pub fn push(&mut self, meta: RowMeta, vector: &[f32], valid_to: i64) {
        let row = self.metas.len() as u32;
        self.by_id.entry(meta.id.clone()).or_default().push(row);
        self.metas.push(meta);
        self.vectors.extend_from_slice(vector);
        self.valid_to.push(valid_to);
    }

    pub fn meta(&self, row: u32) -> &RowMeta {
        &self.metas[row as usize]
    }

    pub fn vector(&self, row: u32) -> &[f32] {
        let start = row as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    pub fn valid_to(&self, row: u32) -> i64 {
        self.valid_to[row as usize]
    }

    /// Whether row `row` was the current version at time `t`.
    pub fn visible_at(&self, row: u32, t: i64) -> bool {
        self.metas[row as usize].updated_at <= t && t < self.valid_to[row as usize]
    }

    /// The past versions of `id`, oldest first.
    pub fn rows_of(&self, id: &PointId) -> &[u32] {
        self.by_id.get(id).map_or(&[], Vec::as_slice)
    }

    /// Whether versions were added since the last [`History::mark_persisted`].
    pub fn has_pending(&self) -> bool {
        self.persisted < self.metas.len()
    }

    /// A copy of the versions added since the last [`History::mark_persisted`], to be
    /// written without holding the collection's state lock.
    pub fn pending(&self) -> PendingHistory {
        let rows = self.persisted..self.metas.len();
        PendingHistory {
            dim: self.dim,
            metas: self.metas[rows.clone()].to_vec(),
            vectors: self.vectors[rows.start * self.dim..rows.end * self.dim].to_vec(),
            valid_to: self.valid_to[rows.clone()].to_vec(),
            upto: rows.end,
        }
    }

    /// Versions `0..upto` are in files the manifest names.
    pub fn mark_persisted(&mut self, upto: usize) {
        self.persisted = upto;
    }

    /// Appends the versions of a history file written by [`PendingHistory::write`].
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let container = Container::open(path, HISTORY_MAGIC, HISTORY_VERSION)?;
        let corrupt = |reason: String| EngineError::Corrupt {
            path: path.display().to_string(),
            reason,
        };
        let mut header = Reader::new(container.section(TAG_HEADER)?);
        let dim = header
            .u32("dimension")
            .map_err(|e| corrupt(e.to_string()))? as usize;
        let rows = header.u64("rows").map_err(|e| corrupt(e.to_string()))? as usize;
        if dim != self.dim {
            return Err(corrupt(format!(
                "history of dimension {dim}, collection has {}",
                self.dim
            )));
        }
        let vector_bytes = container.section(TAG_VECTORS)?;
        if Some(vector_bytes.len()) != rows.checked_mul(dim * 4) {
            return Err(corrupt(format!(
                "{} vector bytes for {rows} rows of dimension {dim}",
                vector_bytes.len()
            )));
        }
        let mut r = Reader::new(container.section(TAG_METAS)?);
        let mut metas = Vec::with_capacity(rows);
        let mut versions = Versions::default();
        for _ in 0..rows {
            let meta = read_meta(&mut r, &mut versions).map_err(|e| corrupt(e.to_string()))?;
            let valid_to = r.i64("valid_to").map_err(|e| corrupt(e.to_string()))?;
            metas.push((meta, valid_to));
        }
        if !r.is_empty() {
            return Err(corrupt("trailing bytes after the last version".into()));
        }
        for ((meta, valid_to), bytes) in metas.into_iter().zip(vector_bytes.chunks_exact(dim * 4)) {
            let vector: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            self.push(meta, &vector, valid_to);
        }
        self.persisted = self.metas.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: u64, updated_at: i64) -> RowMeta {
        RowMeta {
            id: PointId::Num(id),
            payload: Default::default(),
            encoder_version: Some("e1".into()),
            provenance: None,
            created_at: 1,
            updated_at,
        }
    }

    #[test]
    fn versions_round_trip_through_files_and_answer_visibility() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::new(2);
        h.push(meta(7, 10), &[1.0, 2.0], 20);
        h.push(meta(8, 11), &[3.0, 4.0], 15);
        let pending = h.pending();
        pending.write(&dir.path().join("a.pdx")).unwrap();
        h.mark_persisted(pending.upto);
        h.push(meta(7, 20), &[5.0, 6.0], 30);
        assert!(h.has_pending());
        h.pending().write(&dir.path().join("b.pdx")).unwrap();

        let mut back = History::new(2);
        back.load(&dir.path().join("a.pdx")).unwrap();
        back.load(&dir.path().join("b.pdx")).unwrap();
        assert_eq!(back.len(), 3);
        assert!(!back.has_pending());
        assert_eq!(back.rows_of(&PointId::Num(7)), &[0, 2]);
        assert_eq!(back.vector(2), &[5.0, 6.0]);
        assert_eq!(back.meta(1).encoder_version.as_deref(), Some("e1"));
        assert!(back.visible_at(0, 10) && back.visible_at(0, 19) && !back.visible_at(0, 20));
        assert!(!back.visible_at(0, 9) && back.visible_at(2, 20));

        let mut wrong = History::new(3);
        let error = wrong.load(&dir.path().join("a.pdx")).unwrap_err();
        assert!(error.to_string().contains("dimension"), "{error}");
    }
}
