//! The in-memory state of a collection and the one function that applies logged
//! operations to it. Both the live write path and recovery call [`State::apply`], so a
//! replayed log rebuilds exactly what was acknowledged.

use super::ids::IdMap;
use crate::codec::WalOp;
use crate::filter::Filter;
use crate::point::{PointId, RowMeta, RowPayload};
use crate::segment::{Assigned, DeletedRows, GrowingSegment, History, SealedSegment};
use parking_lot::RwLock;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where a live point's current row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    /// Row of the sealed segment at this index of `State::sealed`.
    Sealed { segment: u32, row: u32 },
    /// Row of the growing segment.
    Growing { row: u32 },
    /// Row of the history (a past version; never a live point's location).
    History { row: u32 },
}

/// A sealed segment and its deleted rows.
#[derive(Debug)]
pub(crate) struct SealedEntry {
    pub segment: Arc<SealedSegment>,
    pub deleted: DeletedRows,
}

/// The id changes of an applied operation (see [`State::apply_rows`]).
#[derive(Debug)]
pub(crate) enum IdChanges {
    /// Points now at these growing rows.
    Upserted(Vec<(PointId, u32)>),
    /// Points no longer live.
    Deleted(Vec<PointId>),
}

impl IdChanges {
    pub fn apply_to(self, ids: &mut IdMap) {
        match self {
            IdChanges::Upserted(placed) => {
                for (id, row) in placed {
                    ids.insert(id, Location::Growing { row });
                }
            }
            IdChanges::Deleted(deleted) => {
                for id in &deleted {
                    ids.remove(id);
                }
            }
        }
    }
}

/// Everything a reader needs, behind the collection's `RwLock`.
#[derive(Debug)]
pub(crate) struct State {
    pub sealed: Vec<SealedEntry>,
    pub growing: GrowingSegment,
    /// Live points only, ordered (scroll order). Read it under the state's read lock.
    /// It is changed only by the holder of the collection's writer mutex: under the
    /// state's write lock (through `get_mut`), or, for the id updates of an applied
    /// write, under the state's read lock (see [`State::apply_rows`]), so searches, which
    /// never read it, do not wait for them.
    pub ids: RwLock<IdMap>,
    /// Highest log sequence number applied (raised under the read lock by
    /// [`State::append_rows`]).
    applied_seq: AtomicU64,
    /// Past versions, when the collection keeps history.
    pub history: Option<History>,
    /// Rows each new growing segment is allocated for (see [`growing_capacity`]).
    growing_rows: usize,
}

/// Most bytes of vectors a growing segment is allocated for up front.
const MAX_GROWING_RESERVE: usize = 256 << 20;

/// Rows allocated beyond the seal point: a segment is sealed after the write that crosses
/// it, in the background.
const GROWING_SLACK_ROWS: usize = 8192;

/// Rows a growing segment is allocated for when it starts: as many as it holds before it
/// is sealed (by `seal_threshold` rows or `seal_bytes` of log records, each at least its
/// vector), plus [`GROWING_SLACK_ROWS`], up to [`MAX_GROWING_RESERVE`] bytes of vectors. Growing an
/// allocation means copying it (and faulting in fresh pages) under the state's write
/// lock, which every search waits for: 5 to 25 ms per doubling measured at 16k–64k rows
/// of 128 floats. Allocated up front, pages are only touched as rows arrive.
pub(crate) fn growing_capacity(dim: usize, seal_threshold: usize, seal_bytes: usize) -> usize {
    let row_bytes = (dim * std::mem::size_of::<f32>()).max(1);
    seal_threshold
        .min(seal_bytes / row_bytes)
        .saturating_add(GROWING_SLACK_ROWS)
        .min(MAX_GROWING_RESERVE / row_bytes)
}

impl State {
    /// `growing_rows`: see [`growing_capacity`].
    pub fn new(dim: usize, keep_history: bool, growing_rows: usize) -> Self {
        State {
            growing_rows,
            sealed: Vec::new(),
            growing: GrowingSegment::with_capacity(dim, growing_rows),
            ids: RwLock::new(IdMap::default()),
            applied_seq: AtomicU64::new(0),
            history: keep_history.then(|| History::new(dim)),
        }
    }

    fn history(&self) -> &History {
        self.history
            .as_ref()
            .expect("history locations exist only in collections keeping history")
    }

    /// The metadata of a live point (decoded from the file for a sealed row).
    pub fn meta(&self, location: Location) -> Cow<'_, RowMeta> {
        match location {
            Location::Sealed { segment, row } => self.sealed[segment as usize].segment.meta(row),
            Location::Growing { row } => Cow::Borrowed(self.growing.meta(row)),
            Location::History { row } => Cow::Borrowed(self.history().meta(row)),
        }
    }

    /// The id of the point at `location` (no other metadata decoded).
    pub fn id(&self, location: Location) -> PointId {
        match location {
            Location::Sealed { segment, row } => self.sealed[segment as usize].segment.id_of(row),
            other => self.meta(other).id.clone(),
        }
    }

    /// The payload of the point at `location` (no other metadata decoded).
    pub fn payload(&self, location: Location) -> Cow<'_, RowPayload> {
        match location {
            Location::Sealed { segment, row } => self.sealed[segment as usize].segment.payload(row),
            Location::Growing { row } => Cow::Borrowed(&self.growing.meta(row).payload),
            Location::History { row } => Cow::Borrowed(&self.history().meta(row).payload),
        }
    }

    /// The live points whose payload matches `filter`, segment by segment: a sealed
    /// segment's through its payload index where the index can answer the filter (the
    /// index is built on first use), other rows one by one.
    pub fn matching(&self, filter: &Filter) -> Vec<Location> {
        let mut found = Vec::new();
        for (index, entry) in self.sealed.iter().enumerate() {
            let segment = index as u32;
            match entry.segment.payload_index().eval(filter) {
                Some(set) => found.extend(
                    set.iter()
                        .filter(|&row| !entry.deleted.contains(row))
                        .map(|row| Location::Sealed { segment, row }),
                ),
                None => found.extend(
                    (0..entry.segment.len() as u32)
                        .filter(|&row| {
                            !entry.deleted.contains(row)
                                && filter.matches(&entry.segment.payload(row))
                        })
                        .map(|row| Location::Sealed { segment, row }),
                ),
            }
        }
        found.extend(
            (0..self.growing.len() as u32)
                .filter(|&row| {
                    !self.growing.is_deleted(row) && filter.matches(&self.growing.meta(row).payload)
                })
                .map(|row| Location::Growing { row }),
        );
        found
    }

    /// Asks for the metadata of sealed rows at `locations` at once, where their reads are
    /// advised random (a search's results, before they are decoded one by one).
    pub fn prefetch_metas(&self, locations: &[Location]) {
        for &location in locations {
            if let Location::Sealed { segment, row } = location {
                self.sealed[segment as usize]
                    .segment
                    .prefetch_metas(std::iter::once(row));
            }
        }
    }

    /// When the point at `location` was first written (no other metadata decoded).
    pub fn created_at(&self, location: Location) -> i64 {
        match location {
            Location::Sealed { segment, row } => self.sealed[segment as usize].segment.times(row).0,
            other => self.meta(other).created_at,
        }
    }

    pub fn vector(&self, location: Location) -> &[f32] {
        match location {
            Location::Sealed { segment, row } => self.sealed[segment as usize].segment.vector(row),
            Location::Growing { row } => self.growing.vector(row),
            Location::History { row } => self.history().vector(row),
        }
    }

    /// Ends the current version at `location` at time `at`: keeps it as a past version
    /// (when the collection keeps history), then marks its row deleted.
    fn remove_row(&mut self, location: Location, at: i64) {
        if self.history.is_some() {
            let meta = self.meta(location).into_owned();
            let vector = self.vector(location).to_vec();
            if let Some(history) = &mut self.history {
                history.push(meta, &vector, at);
            }
        }
        match location {
            Location::Sealed { segment, row } => {
                self.sealed[segment as usize].deleted.insert(row);
            }
            Location::Growing { row } => self.growing.delete(row),
            // Live points are never located in the history.
            Location::History { .. } => {}
        }
    }

    /// Applies one logged operation (`record_bytes` long in the log), rows and ids at
    /// once (recovery). Infallible: operations are validated before they are logged, so
    /// replay cannot meet an operation the live path would have refused.
    pub fn apply(&mut self, seq: u64, op: WalOp, record_bytes: usize) {
        let olds = self.plan(&op);
        let changes = self.apply_rows(seq, op, record_bytes, None, &olds);
        changes.apply_to(self.ids.get_mut());
    }

    /// Where each point `op` names is now, as if its points were applied one by one (a
    /// point named twice is, the second time, where the first put it): what
    /// [`State::apply_rows`] needs. Reads the id map: the write path calls it under the
    /// read lock, before taking the write lock.
    pub fn plan(&self, op: &WalOp) -> Vec<Option<Location>> {
        let ids = self.ids.read();
        let mut batch: HashMap<&PointId, Option<Location>> = HashMap::new();
        match op {
            WalOp::Upsert { metas, .. } => {
                let first_row = self.growing.len() as u32;
                metas
                    .iter()
                    .enumerate()
                    .map(|(i, meta)| {
                        let row = Some(Location::Growing {
                            row: first_row + i as u32,
                        });
                        match batch.insert(&meta.id, row) {
                            Some(earlier) => earlier,
                            None => ids.get(&meta.id),
                        }
                    })
                    .collect()
            }
            WalOp::Delete { ids: deleted, .. } => deleted
                .iter()
                .map(|id| match batch.insert(id, None) {
                    Some(earlier) => earlier,
                    None => ids.get(id),
                })
                .collect(),
        }
    }

    /// Applies one logged operation's rows (`olds`: from [`State::plan`], made with the
    /// id map as it is now) and returns its id changes, for the caller to apply to
    /// [`State::ids`] (which only needs the read lock: a write lock is then held only
    /// for the rows, a fraction of the work).
    /// `assigned`: the upserted rows' IVF lists, when the write path computed them (never
    /// on replay: replayed rows are unassigned, see `Partition`).
    pub fn apply_rows(
        &mut self,
        seq: u64,
        op: WalOp,
        record_bytes: usize,
        assigned: Option<&Assigned>,
        olds: &[Option<Location>],
    ) -> IdChanges {
        let changes = match op {
            WalOp::Upsert {
                dim,
                metas,
                vectors,
            } => {
                self.growing.reserve(metas.len());
                self.growing.add_bytes(record_bytes);
                let lists = assigned.filter(|a| a.lists.len() == metas.len());
                let mut placed = Vec::with_capacity(metas.len());
                for (i, (meta, vector)) in metas
                    .into_iter()
                    .zip(vectors.chunks_exact(dim as usize))
                    .enumerate()
                {
                    if let Some(&Some(old)) = olds.get(i) {
                        self.remove_row(old, meta.updated_at);
                    }
                    let id = meta.id.clone();
                    let list = lists.map(|a| (&a.quantisers, a.lists[i]));
                    placed.push((id, self.growing.push(meta, vector, list)));
                }
                IdChanges::Upserted(placed)
            }
            WalOp::Delete { ids, at } => {
                for old in olds.iter().flatten() {
                    self.remove_row(*old, at);
                }
                IdChanges::Deleted(ids)
            }
        };
        self.note_applied(seq);
        changes
    }

    /// [`State::apply_rows`] for what needs no more than the state's read lock, so
    /// searches go on while it runs: an upsert of new points only (`olds` all `None`)
    /// whose rows fit in the growing segment's allocation (see
    /// `GrowingSegment::append`). Gives `op` back, changing nothing, for anything else.
    /// The caller holds the collection's writer mutex (as for `apply_rows`).
    pub fn append_rows(
        &self,
        seq: u64,
        op: WalOp,
        record_bytes: usize,
        assigned: Option<&Assigned>,
        olds: &[Option<Location>],
    ) -> Result<IdChanges, WalOp> {
        let WalOp::Upsert {
            dim,
            metas,
            vectors,
        } = op
        else {
            return Err(op);
        };
        let fits = olds.iter().all(Option::is_none)
            && olds.len() == metas.len()
            && dim as usize == self.growing.dim()
            && self.growing.spare_rows() >= metas.len();
        if !fits {
            return Err(WalOp::Upsert {
                dim,
                metas,
                vectors,
            });
        }
        let ids: Vec<PointId> = metas.iter().map(|m| m.id.clone()).collect();
        let lists = assigned
            .filter(|a| a.lists.len() == metas.len())
            .map(|a| (&a.quantisers, &a.lists[..]));
        match self.growing.append(metas.into_iter(), &vectors, lists) {
            Ok(first) => {
                self.growing.add_bytes(record_bytes);
                self.note_applied(seq);
                let placed = ids.into_iter().zip(first..).collect();
                Ok(IdChanges::Upserted(placed))
            }
            Err(metas) => Err(WalOp::Upsert {
                dim,
                metas: metas.collect(),
                vectors,
            }),
        }
    }

    /// Highest log sequence number applied.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// Sets the highest log sequence number applied (a checkpoint's, on open).
    pub fn set_applied_seq(&mut self, seq: u64) {
        *self.applied_seq.get_mut() = seq;
    }

    fn note_applied(&self, seq: u64) {
        self.applied_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// An empty growing segment to follow the current one, its memory already mapped
    /// ([`GrowingSegment::prefaulted`]; made outside the state's lock, it is what
    /// [`Self::freeze_growing`] takes).
    pub fn next_growing((dim, growing_rows, touch): (usize, usize, usize)) -> GrowingSegment {
        GrowingSegment::prefaulted(dim, growing_rows, touch)
    }

    /// The arguments of [`Self::next_growing`]: the dimension, the rows a growing segment
    /// reserves, and the rows the current one holds.
    pub fn growing_shape(&self) -> (usize, usize, usize) {
        (self.growing.dim(), self.growing_rows, self.growing.len())
    }

    /// Turns the growing segment into a frozen sealed segment with id `id` (see
    /// `SealedSegment::frozen`) and starts `next` (empty, of this state's dimension; see
    /// [`Self::next_growing`]; `None`: one whose pages fault in as rows arrive) in its
    /// place. Live points move with their rows (in O(1): see `IdMap::freeze_growing`); a
    /// growing segment without live rows is simply dropped.
    pub fn freeze_growing(&mut self, id: u64, next: Option<GrowingSegment>) {
        let (dim, rows, _) = self.growing_shape();
        let next = next
            .filter(|n| n.len() == 0 && n.dim() == dim)
            .unwrap_or_else(|| GrowingSegment::with_capacity(dim, rows));
        let growing = std::mem::replace(&mut self.growing, next);
        if growing.live() == 0 {
            return;
        }
        let (vectors, metas, deleted_flags, partition) = growing.into_parts();
        let index = self.sealed.len() as u32;
        let mut deleted = DeletedRows::default();
        for (row, _) in deleted_flags.iter().enumerate().filter(|(_, &d)| d) {
            deleted.insert(row as u32);
        }
        self.ids.get_mut().freeze_growing(index);
        self.sealed.push(SealedEntry {
            segment: Arc::new(SealedSegment::frozen(id, dim, vectors, metas, partition)),
            deleted,
        });
    }

    /// Rows held by sealed segments, deleted ones included.
    pub fn sealed_rows(&self) -> usize {
        self.sealed.iter().map(|e| e.segment.len()).sum()
    }

    /// Deleted rows still occupying space.
    pub fn deleted_rows(&self) -> usize {
        self.sealed.iter().map(|e| e.deleted.len()).sum::<usize>() + self.growing.deleted_rows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(ids: &[u64]) -> WalOp {
        WalOp::Upsert {
            dim: 2,
            metas: ids
                .iter()
                .map(|&n| RowMeta {
                    id: PointId::Num(n),
                    payload: RowPayload::default(),
                    encoder_version: None,
                    provenance: None,
                    created_at: 1,
                    updated_at: 1,
                })
                .collect(),
            vectors: ids.iter().flat_map(|&n| [n as f32, 0.0]).collect(),
        }
    }

    /// Validation keeps a batch from naming an id twice, but replay must not rely on
    /// it: applied at once, a batch ends as its points applied one by one would.
    #[test]
    fn a_batch_naming_an_id_twice_ends_as_one_by_one() {
        let mut state = State::new(2, false, 4);
        state.apply(1, upsert(&[1, 2, 1]), 0);
        assert_eq!(state.ids.read().len(), 2);
        assert_eq!(state.growing.live(), 2);
        assert_eq!(
            state.ids.read().get(&PointId::Num(1)),
            Some(Location::Growing { row: 2 })
        );
        state.apply(
            2,
            WalOp::Delete {
                ids: vec![PointId::Num(2), PointId::Num(2)],
                at: 2,
            },
            0,
        );
        assert_eq!(state.ids.read().len(), 1);
        assert_eq!(state.growing.live(), 1);
        // Past the rows allocated up front, the segment still grows.
        state.apply(3, upsert(&[3, 4, 5, 6, 7]), 0);
        assert_eq!(state.growing.live(), 6);
        assert_eq!(state.applied_seq(), 3);
    }

    #[test]
    fn growing_capacity_follows_the_seal_point() {
        // 128 floats: 32 MiB of log records is at most 65,536 rows.
        assert_eq!(
            growing_capacity(128, 100_000, 32 << 20),
            65_536 + GROWING_SLACK_ROWS
        );
        assert_eq!(
            growing_capacity(128, 1_000, 32 << 20),
            1_000 + GROWING_SLACK_ROWS
        );
        // Never more than the cap in vector bytes.
        assert_eq!(
            growing_capacity(4096, usize::MAX, usize::MAX),
            MAX_GROWING_RESERVE / (4096 * 4)
        );
    }
}
