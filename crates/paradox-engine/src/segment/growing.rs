//! The growing segment: recent writes held in RAM, searchable as soon as they are applied.

use super::append::AppendBuf;
use super::Partition;
use crate::point::RowMeta;
use paradox_index::IvfIndex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Newest rows of a collection. Rows are append-only; a replaced or deleted row is only
/// marked, and dropped when the segment is sealed.
///
/// New rows can be appended while searches read the segment ([`Self::append`], under the
/// collection state's read lock): they go into memory allocated up front, and become
/// visible all at once when the row count is published. Anything else that changes the
/// segment (marking rows deleted, growing the allocation) takes `&mut self`, so the
/// state's write lock.
#[derive(Debug)]
pub(crate) struct GrowingSegment {
    dim: usize,
    /// Rows readers may read. Every buffer below holds at least this many rows: it is
    /// raised (release) only after a batch is written to all of them.
    rows: AtomicUsize,
    vectors: AppendBuf<f32>,
    metas: AppendBuf<RowMeta>,
    deleted: AppendBuf<bool>,
    /// Rows marked deleted (changed only under `&mut self`, so it is never transiently
    /// off while rows are appended).
    deleted_rows: usize,
    /// Bytes of the log records that brought the rows (vectors + metadata); what
    /// `EngineOptions::seal_bytes` is compared with.
    bytes: AtomicUsize,
    /// The rows by IVF list, once a write came with lists (see [`Partition`]).
    partition: OnceLock<Arc<Partition>>,
    /// Whether pages past the rows were mapped ahead ([`Self::prefaulted`]) and not
    /// released since ([`Self::release_spare`]).
    spare_mapped: AtomicBool,
}

impl GrowingSegment {
    /// An empty segment allocated for `rows` rows (it grows past them if it must).
    pub fn with_capacity(dim: usize, rows: usize) -> Self {
        GrowingSegment {
            dim,
            rows: AtomicUsize::new(0),
            vectors: AppendBuf::with_capacity(rows * dim),
            metas: AppendBuf::with_capacity(rows),
            deleted: AppendBuf::with_capacity(rows),
            deleted_rows: 0,
            bytes: AtomicUsize::new(0),
            partition: OnceLock::new(),
            spare_mapped: AtomicBool::new(false),
        }
    }

    /// [`Self::with_capacity`], with the pages of the memory its first `touch` rows will
    /// take mapped now.
    ///
    /// A fresh allocation faults its pages in on first write (a 500-row batch of
    /// 128-float rows touches ~80 pages), which made appending rows several times slower.
    /// A seal makes the next segment this way before it takes any lock, touching as many
    /// rows as the segment it seals held: a stream fills the next one as it filled the
    /// last, while a collection sealing a few rows (a flush) keeps a few pages resident,
    /// not the whole reserve.
    pub fn prefaulted(dim: usize, rows: usize, touch: usize) -> Self {
        let mut segment = Self::with_capacity(dim, rows);
        let touch = touch.min(rows);
        segment.vectors.touch_spare(touch * dim);
        segment.metas.touch_spare(touch);
        segment.deleted.touch_spare(touch);
        *segment.spare_mapped.get_mut() = touch > 0;
        segment
    }

    /// Whether [`Self::prefaulted`] mapped pages ahead of rows that have not come, not
    /// given back since; clears the mark (the caller then gives them back with
    /// [`Self::release_spare`]).
    pub fn take_spare_mapped(&self) -> bool {
        self.spare_mapped.swap(false, Ordering::AcqRel)
    }

    /// Gives back up to `budget` bytes of the pages mapped ahead of rows (a stream
    /// stopped), leaving the top `skip` bytes of each buffer alone: called in steps by
    /// the collection's maintenance once writes have paused. Appends wait meanwhile;
    /// searches do not. `None` once every buffer is done.
    pub fn release_spare(&self, skip: usize, budget: usize) -> Option<usize> {
        let steps = [
            self.vectors.release_spare(skip, budget),
            self.metas.release_spare(skip, budget),
            self.deleted.release_spare(skip, budget),
        ];
        steps
            .iter()
            .any(Option::is_some)
            .then(|| steps.iter().flatten().sum())
    }

    /// Appends a row and returns its row number, growing the allocation if it is full.
    /// `list`: the row's IVF list and the quantisers it was computed with (see
    /// [`Self::append`]).
    pub fn push(
        &mut self,
        meta: RowMeta,
        vector: &[f32],
        list: Option<(&Arc<IvfIndex>, u32)>,
    ) -> u32 {
        self.reserve(1);
        let list = list.map(|(quantisers, list)| (quantisers, [list]));
        let appended = self.append(
            std::iter::once(meta),
            vector,
            list.as_ref().map(|(q, l)| (*q, &l[..])),
        );
        // Room for the row was just reserved.
        appended.unwrap_or_else(|_| unreachable!("a reserved row fits"))
    }

    /// Rows that fit without growing the allocation (what [`Self::append`] can take).
    pub fn spare_rows(&self) -> usize {
        let rows = self.metas.spare().min(self.deleted.spare());
        match self.dim {
            0 => rows,
            dim => rows.min(self.vectors.spare() / dim),
        }
    }

    /// Appends `metas` with their `vectors` (row-major) while searches may read the
    /// segment, and returns the first new row's number; the rows become visible together
    /// once all are written. Gives `metas` back, appending nothing, when they do not fit
    /// in the allocation ([`Self::spare_rows`]).
    ///
    /// `lists`: the rows' IVF lists and the quantisers they were computed with; the
    /// first rows that come with lists start the partition (the rows before them stay
    /// unassigned).
    pub fn append<I: ExactSizeIterator<Item = RowMeta>>(
        &self,
        metas: I,
        vectors: &[f32],
        lists: Option<(&Arc<IvfIndex>, &[u32])>,
    ) -> Result<u32, I> {
        let n = metas.len();
        debug_assert_eq!(vectors.len(), n * self.dim);
        // Held until the rows are published: appends cannot interleave.
        let (mut vecs, mut rows_meta, mut flags) = (
            self.vectors.appender(),
            self.metas.appender(),
            self.deleted.appender(),
        );
        let first = self.rows.load(Ordering::Relaxed);
        // Every buffer holds exactly the published rows between appends (each append
        // below fills all of them or, with the room checked first, none).
        let aligned = self.metas.len() == first
            && self.deleted.len() == first
            && self.vectors.len() == first * self.dim;
        if !aligned || self.spare_rows() < n || vectors.len() != n * self.dim {
            debug_assert!(aligned, "growing segment buffers out of step");
            return Err(metas);
        }
        let fitted = vecs.extend_from_slice(vectors);
        let flagged = flags.extend_from_slice(&vec![false; n]);
        debug_assert!(fitted && flagged);
        for meta in metas.take(n) {
            // Room was checked above, with every appender held.
            let _ = rows_meta.push(meta);
        }
        debug_assert_eq!(
            self.metas.len(),
            first + n,
            "an iterator shorter than its len"
        );
        let first_row = first as u32;
        if let Some((quantisers, _)) = lists {
            self.partition
                .get_or_init(|| Arc::new(Partition::new(quantisers.clone(), first_row)));
        }
        if let Some(partition) = self.partition.get() {
            partition.push_rows(first_row, n, lists);
        }
        self.rows.store(first + n, Ordering::Release);
        Ok(first_row)
    }

    /// Pages past the rows resident in memory (Linux; for tests).
    #[cfg(all(test, target_os = "linux"))]
    pub fn resident_spare_pages(&self) -> usize {
        self.vectors.resident_spare_pages()
            + self.metas.resident_spare_pages()
            + self.deleted.resident_spare_pages()
    }

    /// Counts `bytes` more log-record bytes held by the segment.
    pub fn add_bytes(&self, bytes: usize) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Log-record bytes of the rows held (see the field).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The rows, row-major vectors and metadata, which rows are deleted, and the
    /// partition.
    pub fn into_parts(self) -> (Vec<f32>, Vec<RowMeta>, Vec<bool>, Option<Arc<Partition>>) {
        (
            self.vectors.into_vec(),
            self.metas.into_vec(),
            self.deleted.into_vec(),
            self.partition.into_inner(),
        )
    }

    /// Forgets the rows' lists (the index config changed): they are scanned exactly.
    pub fn drop_partition(&mut self) {
        self.partition = OnceLock::new();
    }

    /// The rows by IVF list, if writes came with lists.
    pub fn partition(&self) -> Option<&Arc<Partition>> {
        self.partition.get()
    }

    pub fn reserve(&mut self, rows: usize) {
        self.vectors.reserve(rows * self.dim);
        self.metas.reserve(rows);
        self.deleted.reserve(rows);
    }

    pub fn delete(&mut self, row: u32) {
        if let Some(flag) = self.deleted.as_mut_slice().get_mut(row as usize) {
            if !*flag {
                *flag = true;
                self.deleted_rows += 1;
            }
        }
    }

    pub fn is_deleted(&self, row: u32) -> bool {
        self.deleted.prefix(self.len())[row as usize]
    }

    pub fn has_deletions(&self) -> bool {
        self.deleted_rows > 0
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows held, deleted ones included.
    pub fn len(&self) -> usize {
        self.rows.load(Ordering::Acquire)
    }

    /// Rows not deleted.
    pub fn live(&self) -> usize {
        self.len() - self.deleted_rows
    }

    /// Rows marked deleted.
    pub fn deleted_rows(&self) -> usize {
        self.deleted_rows
    }

    pub fn vectors(&self) -> &[f32] {
        self.vectors.prefix(self.len() * self.dim)
    }

    pub fn vector(&self, row: u32) -> &[f32] {
        let start = row as usize * self.dim;
        &self.vectors()[start..start + self.dim]
    }

    pub fn meta(&self, row: u32) -> &RowMeta {
        &self.metas.prefix(self.len())[row as usize]
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

    /// Appends while shared fit the allocation or append nothing; rows are numbered on
    /// from those pushed, and the first rows with lists start the partition.
    #[test]
    fn shared_appends_fit_or_give_the_rows_back() {
        let mut segment = GrowingSegment::with_capacity(2, 4);
        segment.push(meta(0), &[0.0, 0.0], None);
        let room = segment.spare_rows();
        assert!(room >= 3);
        let too_many: Vec<RowMeta> = (1..=room as u64 + 1).map(meta).collect();
        let vectors = vec![1.0; (room + 1) * 2];
        let back = segment.append(too_many.into_iter(), &vectors, None);
        assert_eq!(back.map_err(|b| b.len()), Err(room + 1));
        assert_eq!(segment.len(), 1);
        let two = [meta(1), meta(2)];
        assert_eq!(
            segment
                .append(two.into_iter(), &[1.0, 1.0, 2.0, 2.0], None)
                .ok(),
            Some(1)
        );
        assert_eq!(segment.len(), 3);
        assert_eq!(segment.vector(2), [2.0, 2.0]);
        assert_eq!(segment.meta(1).id, PointId::Num(1));
        assert!(segment.partition().is_none());
        segment.delete(1);
        assert!(segment.is_deleted(1) && segment.has_deletions());
        assert_eq!(segment.live(), 2);
        let (vectors, metas, deleted, _) = segment.into_parts();
        assert_eq!((vectors.len(), metas.len()), (6, 3));
        assert_eq!(deleted, [false, true, false]);
    }
}
