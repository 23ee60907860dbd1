//! The growing segment: recent writes held in RAM, searchable as soon as they are applied.

use super::Partition;
use crate::point::RowMeta;
use paradox_index::IvfIndex;
use std::sync::Arc;

/// Newest rows of a collection. Rows are append-only; a replaced or deleted row is only
/// marked, and dropped when the segment is sealed.
#[derive(Debug)]
pub(crate) struct GrowingSegment {
    dim: usize,
    vectors: Vec<f32>,
    metas: Vec<RowMeta>,
    deleted: Vec<bool>,
    live: usize,
    /// Bytes of the log records that brought the rows (vectors + metadata); what
    /// `EngineOptions::seal_bytes` is compared with.
    bytes: usize,
    /// The rows by IVF list, once a write came with lists (see [`Partition`]).
    partition: Option<Arc<Partition>>,
}

impl GrowingSegment {
    /// An empty segment allocated for `rows` rows (it grows past them if it must).
    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        GrowingSegment {
            dim,
            vectors: Vec::with_capacity(rows * dim),
            metas: Vec::with_capacity(rows),
            deleted: Vec::with_capacity(rows),
            live: 0,
            bytes: 0,
            partition: None,
        }
    }

    /// [`Self::with_capacity`], with the pages of the memory its first `touch` rows will
    /// take mapped now.
    ///
    /// Rows are appended under the collection state's write lock, which every search
    /// waits for; a fresh allocation faults its pages in on first write, and those faults
    /// (a 500-row batch of 128-float rows touches ~80 pages) were most of the time the
    /// lock was held. A seal makes the next segment this way before it takes any lock,
    /// touching as many rows as the segment it seals held: a stream fills the next one as
    /// it filled the last, while a collection sealing a few rows (a flush) keeps a few
    /// pages resident, not the whole reserve.
    pub fn prefaulted(dim: usize, rows: usize, touch: usize) -> Self {
        let mut segment = Self::with_capacity(dim, rows);
        let touch = touch.min(rows);
        touch_spare(&mut segment.vectors, touch * dim);
        touch_spare(&mut segment.metas, touch);
        touch_spare(&mut segment.deleted, touch);
        segment
    }

    /// Appends a row and returns its row number. `list`: the row's IVF list and the
    /// quantisers it was computed with; the first row that has one starts the partition
    /// (the rows before it stay unassigned).
    pub fn push(
        &mut self,
        meta: RowMeta,
        vector: &[f32],
        list: Option<(&Arc<IvfIndex>, u32)>,
    ) -> u32 {
        debug_assert_eq!(vector.len(), self.dim);
        let row = self.metas.len() as u32;
        if let (None, Some((quantisers, _))) = (&self.partition, list) {
            self.partition = Some(Arc::new(Partition::new(quantisers.clone(), row)));
        }
        if let Some(partition) = &mut self.partition {
            // Searches hold the state's read lock while they use it: never shared here.
            Arc::make_mut(partition).push(row, list);
        }
        self.vectors.extend_from_slice(vector);
        self.metas.push(meta);
        self.deleted.push(false);
        self.live += 1;
        row
    }

    /// Counts `bytes` more log-record bytes held by the segment.
    pub fn add_bytes(&mut self, bytes: usize) {
        self.bytes += bytes;
    }

    /// Log-record bytes of the rows held (see the field).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The rows, row-major vectors and metadata, which rows are deleted, and the
    /// partition.
    pub fn into_parts(self) -> (Vec<f32>, Vec<RowMeta>, Vec<bool>, Option<Arc<Partition>>) {
        (self.vectors, self.metas, self.deleted, self.partition)
    }

    /// Forgets the rows' lists (the index config changed): they are scanned exactly.
    pub fn drop_partition(&mut self) {
        self.partition = None;
    }

    /// The rows by IVF list, if writes came with lists.
    pub fn partition(&self) -> Option<&Arc<Partition>> {
        self.partition.as_ref()
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

    pub fn dim(&self) -> usize {
        self.dim
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
}

/// Writes zero bytes over the first `n` slots of `v`'s spare capacity (never read: its
/// length is unchanged), so the pages behind them are mapped.
fn touch_spare<T>(v: &mut Vec<T>, n: usize) {
    for slot in v.spare_capacity_mut().iter_mut().take(n) {
        *slot = std::mem::MaybeUninit::zeroed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::PointId;

    fn meta(i: u64) -> RowMeta {
        RowMeta {
            id: PointId::Num(i),
            payload: Default::default(),
            encoder_version: None,
            provenance: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// A prefaulted segment is an empty one: rows go in as usual, within its reserve and
    /// past it, and touching more rows than it reserves touches only the reserve.
    #[test]
    fn a_prefaulted_segment_takes_rows_like_any_other() {
        for (rows, touch) in [(10, 4), (10, 100), (0, 5)] {
            let mut segment = GrowingSegment::prefaulted(3, rows, touch);
            assert_eq!(segment.len(), 0);
            assert!(segment.vectors().is_empty());
            for i in 0..rows as u64 + 5 {
                let v = [i as f32, 1.0, 2.0];
                assert_eq!(segment.push(meta(i), &v, None), i as u32);
                assert_eq!(segment.vector(i as u32), v);
            }
            assert_eq!(segment.live(), rows + 5);
            assert!(!segment.is_deleted(0));
        }
    }
}
