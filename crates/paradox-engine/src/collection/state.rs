//! The in-memory state of a collection and the one function that applies logged
//! operations to it. Both the live write path and recovery call [`State::apply`], so a
//! replayed log rebuilds exactly what was acknowledged.

use super::ids::IdMap;
use crate::codec::WalOp;
use crate::filter::Filter;
use crate::point::{PointId, RowMeta, RowPayload};
use crate::segment::{Assigned, DeletedRows, GrowingSegment, History, SealedSegment};
use std::borrow::Cow;
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

/// Everything a reader needs, behind the collection's `RwLock`.
#[derive(Debug)]
pub(crate) struct State {
    pub sealed: Vec<SealedEntry>,
    pub growing: GrowingSegment,
    /// Live points only, ordered (scroll order).
    pub ids: IdMap,
    /// Highest log sequence number applied.
    pub applied_seq: u64,
    /// Past versions, when the collection keeps history.
    pub history: Option<History>,
}

impl State {
    pub fn new(dim: usize, keep_history: bool) -> Self {
        State {
            sealed: Vec::new(),
            growing: GrowingSegment::new(dim),
            ids: IdMap::default(),
            applied_seq: 0,
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

    /// Applies one logged operation (`record_bytes` long in the log). Infallible:
    /// operations are validated before they are logged, so replay cannot meet an operation
    /// the live path would have refused.
    /// `assigned`: the upserted rows' IVF lists, when the write path computed them (never
    /// on replay: replayed rows are unassigned, see `Partition`).
    pub fn apply(&mut self, seq: u64, op: WalOp, record_bytes: usize, assigned: Option<&Assigned>) {
        match op {
            WalOp::Upsert {
                dim,
                metas,
                vectors,
            } => {
                self.growing.reserve(metas.len());
                self.growing.add_bytes(record_bytes);
                let lists = assigned.filter(|a| a.lists.len() == metas.len());
                for (i, (meta, vector)) in metas
                    .into_iter()
                    .zip(vectors.chunks_exact(dim as usize))
                    .enumerate()
                {
                    if let Some(old) = self.ids.get(&meta.id) {
                        self.remove_row(old, meta.updated_at);
                    }
                    let id = meta.id.clone();
                    let list = lists.map(|a| (&a.quantisers, a.lists[i]));
                    let row = self.growing.push(meta, vector, list);
                    self.ids.insert(id, Location::Growing { row });
                }
            }
            WalOp::Delete { ids, at } => {
                for id in ids {
                    if let Some(old) = self.ids.remove(&id) {
                        self.remove_row(old, at);
                    }
                }
            }
        }
        self.applied_seq = self.applied_seq.max(seq);
    }

    /// Turns the growing segment into a frozen sealed segment with id `id` (see
    /// `SealedSegment::frozen`) and starts an empty one. Live points move with their rows
    /// (in O(1): see `IdMap::freeze_growing`); a growing segment without live rows is
    /// simply dropped.
    pub fn freeze_growing(&mut self, id: u64) {
        let dim = self.growing.dim();
        let growing = std::mem::replace(&mut self.growing, GrowingSegment::new(dim));
        if growing.live() == 0 {
            return;
        }
        let (vectors, metas, deleted_flags, partition) = growing.into_parts();
        let index = self.sealed.len() as u32;
        let mut deleted = DeletedRows::default();
        for (row, _) in deleted_flags.iter().enumerate().filter(|(_, &d)| d) {
            deleted.insert(row as u32);
        }
        self.ids.freeze_growing(index);
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
        self.sealed.iter().map(|e| e.deleted.len()).sum::<usize>()
            + (self.growing.len() - self.growing.live())
    }
}
