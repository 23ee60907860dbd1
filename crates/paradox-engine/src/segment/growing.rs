//! The growing segment: recent writes held in RAM, searchable as soon as they are applied.

use crate::point::RowMeta;

/// Newest rows of a collection. Rows are append-only; a replaced or deleted row is only
/// marked, and dropped when the segment is sealed.
#[derive(Debug)]
pub(crate) struct GrowingSegment {
    dim: usize,
    vectors: Vec<f32>,
    metas: Vec<RowMeta>,
    deleted: Vec<bool>,
    live: usize,
}

impl GrowingSegment {
    pub fn new(dim: usize) -> Self {
        GrowingSegment {
            dim,
            vectors: Vec::new(),
            metas: Vec::new(),
            deleted: Vec::new(),
            live: 0,
        }
    }

    /// Appends a row and returns its row number.
    pub fn push(&mut self, meta: RowMeta, vector: &[f32]) -> u32 {
        debug_assert_eq!(vector.len(), self.dim);
        let row = self.metas.len() as u32;
        self.vectors.extend_from_slice(vector);
        self.metas.push(meta);
        self.deleted.push(false);
        self.live += 1;
        row
    }

    pub fn reserve(&mut self, rows: usize) {
        self.vectors.reserve(rows * self.dim);
        self.metas.reserve(rows);
        self.deleted.reserve(rows);
    }

    pub fn delete(&mut self, row: u32) {
        if let Some(flag) = self.deleted.get_mut(row as usize) {
            if !*flag {
                *flag = true;
                self.live -= 1;
            }
        }
    }

    pub fn is_deleted(&self, row: u32) -> bool {
        self.deleted[row as usize]
    }

    pub fn has_deletions(&self) -> bool {
        self.live < self.metas.len()
    }

    /// Rows held, deleted ones included.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    /// Rows not deleted.
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    pub fn vector(&self, row: u32) -> &[f32] {
        let start = row as usize * self.dim;
        &self.vectors[start..start + self.dim]
    }

    pub fn meta(&self, row: u32) -> &RowMeta {
        &self.metas[row as usize]
    }

    /// Live rows in order: `(row, meta, vector)`.
    pub fn live_rows(&self) -> impl Iterator<Item = (u32, &RowMeta, &[f32])> {
        self.metas
            .iter()
            .zip(self.vectors.chunks_exact(self.dim.max(1)))
            .enumerate()
            .filter(|(row, _)| !self.deleted[*row])
            .map(|(row, (meta, vector))| (row as u32, meta, vector))
    }
}
