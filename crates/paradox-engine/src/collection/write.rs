//! Upserts and deletes: validation, logging, applying, acknowledging.

use super::Collection;
use crate::codec::WalOp;
use crate::config::MAX_BATCH;
use crate::error::{EngineError, Result};
use crate::filter::Filter;
use crate::point::{now_millis, NewPoint, PointId, RowMeta, Versions};
use crate::segment::Assigned;
use serde::Serialize;
use std::collections::HashSet;

/// Largest encoded log record accepted for one call (a larger batch must be split).
const MAX_RECORD_BYTES: usize = 512 << 20;

/// Deepest payload nesting accepted (objects and arrays). Deeper payloads are refused at
/// write time: the JSON reader that loads segments stops at 128 levels, and a store must
/// never accept what it cannot read back.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

fn check_payload_depth(payload: &crate::point::Payload, id: &PointId) -> Result<()> {
    fn depth(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    // Walking stops being useful past the limit; serde_json itself caps what it parses.
    let deepest = 1 + payload.values().map(depth).max().unwrap_or(0);
    if deepest > MAX_PAYLOAD_DEPTH {
        return Err(EngineError::invalid(
            "payload",
            format!("payload of point {id} is nested {deepest} levels deep; at most {MAX_PAYLOAD_DEPTH} are accepted"),
        ));
    }
    Ok(())
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WriteResult {
    /// Log sequence number of the write (0 when nothing was written).
    pub seq: u64,
    /// Points written or deleted.
    pub count: usize,
}

impl Collection {
    /// Checks and prepares one vector for this collection: dimension, finiteness,
    /// normalisation under cosine. `point` names the point in errors.
    pub(crate) fn prepare_vector(&self, vector: &mut [f32], point: Option<&PointId>) -> Result<()> {
        let dim = self.config.dimension;
        if vector.len() != dim {
            return Err(EngineError::DimensionMismatch {
                collection: self.config.name.clone(),
                expected: dim,
                got: vector.len(),
                point: point.cloned(),
            });
        }
        if let Some(position) = vector.iter().position(|x| !x.is_finite()) {
            return Err(EngineError::NonFiniteValue {
                point: point.cloned(),
                position,
                value: vector[position].to_string(),
            });
        }
        if self.config.metric.normalizes() {
            let norm = paradox_kernels::normalize(vector);
            if !norm.is_finite() {
                return Err(EngineError::invalid(
                    "vector",
                    format!(
                        "the norm of the vector{} overflows f32; scale it down",
                        point.map(|p| format!(" of point {p}")).unwrap_or_default()
                    ),
                ));
            }
        }
        if self.config.metric.normalizes() && vector.iter().all(|&x| x == 0.0) {
            return Err(EngineError::ZeroVector {
                point: point.cloned(),
            });
        }
        Ok(())
    }

    /// Inserts or replaces points. Returns once the write is durable per the fsync policy;
    /// the points are searchable before that (as soon as they are applied).
    ///
    /// The whole batch is validated first: one bad point rejects the batch and nothing is
    /// written. Under the cosine metric vectors are stored normalised.
    pub fn upsert(&self, points: Vec<NewPoint>) -> Result<WriteResult> {
        self.check_writable()?;
        if points.is_empty() {
            return Ok(WriteResult { seq: 0, count: 0 });
        }
        if points.len() > MAX_BATCH {
            return Err(EngineError::invalid(
                "points",
                format!(
                    "at most {MAX_BATCH} points per upsert, got {}; split the batch",
                    points.len()
                ),
            ));
        }
        let dim = self.config.dimension;
        let mut seen = HashSet::with_capacity(points.len());
        let mut vectors = Vec::with_capacity(points.len() * dim);
        let mut metas = Vec::with_capacity(points.len());
        let mut versions = Versions::default();
        for mut point in points {
            if let PointId::Str(s) = &point.id {
                if s.len() > PointId::MAX_STR_LEN {
                    return Err(EngineError::invalid(
                        "id",
                        format!(
                            "string ids are at most {} bytes, got {}",
                            PointId::MAX_STR_LEN,
                            s.len()
                        ),
                    ));
                }
            }
            self.prepare_vector(&mut point.vector, Some(&point.id))?;
            check_payload_depth(&point.payload, &point.id)?;
            if !seen.insert(point.id.clone()) {
                return Err(EngineError::DuplicateId(point.id));
            }
            vectors.extend_from_slice(&point.vector);
            metas.push(RowMeta {
                id: point.id,
                payload: point.payload.into(),
                encoder_version: point.encoder_version.map(|v| versions.intern(&v)),
                provenance: point.provenance.map(Box::new),
                created_at: 0,
                updated_at: 0,
            });
        }
        let count = metas.len();
        // Outside every lock: the IVF lists the rows are filed in as they are applied.
        let assigned = self.assign_lists(&vectors);
        let mut writer = self.writer.lock();
        self.check_writable()?;
        let now = now_millis();
        let mut op = WalOp::Upsert {
            dim: dim as u32,
            metas,
            vectors,
        };
        let olds = {
            let state = self.state.read();
            let olds = state.plan(&op);
            if let WalOp::Upsert { metas, .. } = &mut op {
                // The batch names each id once (checked above): an old location is a
                // stored row.
                for (meta, old) in metas.iter_mut().zip(&olds) {
                    meta.created_at = old.map_or(now, |loc| state.created_at(loc));
                    meta.updated_at = now;
                }
            }
            olds
        };
        let seq = self.log_and_apply(&mut writer, op, assigned.as_ref(), &olds)?;
        drop(writer);
        self.after_write()?;
        self.wait_durable(seq)?;
        Ok(WriteResult { seq, count })
    }

    /// Deletes points by id; ids that do not exist are ignored. Returns how many existed.
    pub fn delete(&self, ids: &[PointId]) -> Result<WriteResult> {
        self.check_writable()?;
        let mut writer = self.writer.lock();
        self.check_writable()?;
        let existing: Vec<PointId> = {
            let state = self.state.read();
            let live = state.ids.read();
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| live.contains(id) && seen.insert((*id).clone()))
                .cloned()
                .collect()
        };
        let result = self.delete_locked(&mut writer, existing)?;
        drop(writer);
        self.finish_delete(result)
    }

    /// Deletes every point whose payload matches `filter`. Returns how many.
    pub fn delete_by_filter(&self, filter: &Filter) -> Result<WriteResult> {
        self.check_writable()?;
        let mut writer = self.writer.lock();
        self.check_writable()?;
        let matching: Vec<PointId> = {
            let state = self.state.read();
            state
                .matching(filter)
                .into_iter()
                .map(|loc| state.id(loc))
                .collect()
        };
        let result = self.delete_locked(&mut writer, matching)?;
        drop(writer);
        self.finish_delete(result)
    }

    /// After a delete released the writer mutex: maintenance, then durability.
    fn finish_delete(&self, result: WriteResult) -> Result<WriteResult> {
        if result.count > 0 {
            self.after_write()?;
            self.wait_durable(result.seq)?;
        }
        Ok(result)
    }

    fn delete_locked(
        &self,
        writer: &mut super::WriterState,
        ids: Vec<PointId>,
    ) -> Result<WriteResult> {
        if ids.is_empty() {
            return Ok(WriteResult { seq: 0, count: 0 });
        }
        let mut result = WriteResult { seq: 0, count: 0 };
        // Very large deletes are logged in chunks so no record exceeds the size bound.
        for chunk in ids.chunks(MAX_BATCH) {
            let op = WalOp::Delete {
                ids: chunk.to_vec(),
                at: now_millis(),
            };
            let olds = self.state.read().plan(&op);
            result.seq = self.log_and_apply(writer, op, None, &olds)?;
            result.count += chunk.len();
        }
        Ok(result)
    }

    /// The IVF lists of new rows (`vectors`, row-major) under an IVF index config: with
    /// the quantisers of the growing segment's partition, else the collection's last
    /// trained ones; `None` when there are none (the rows are then scanned exactly until
    /// their segment is indexed).
    fn assign_lists(&self, vectors: &[f32]) -> Option<Assigned> {
        const ASSIGN_SLICE_ROWS: usize = 64;
        self.index_config().ivf()?;
        let current = self
            .state
            .read()
            .growing
            .partition()
            .map(|p| p.quantisers().clone());
        let quantisers = current.or_else(|| self.ivf_donor.current())?;
        // On the write pool (below searches' priority), in slices of
        // `ASSIGN_SLICE_ROWS`, yielding the core between them: on a busy machine the
        // scheduler would let it preempt a search's worker for its whole burst (a 500-row
        // batch against 1,024 lists is ~2 ms of arithmetic); yielding hands the core
        // back to that worker every ~0.3 ms. Costs one system call per slice.
        let dim = self.config.dimension.max(1);
        let lists = super::indexing::on_write_pool(|| {
            let mut lists = Vec::with_capacity(vectors.len() / dim);
            for (i, slice) in vectors.chunks(ASSIGN_SLICE_ROWS * dim).enumerate() {
                if i > 0 {
                    std::thread::yield_now();
                }
                lists.extend(quantisers.assign_lists(slice));
            }
            lists
        });
        Some(Assigned { lists, quantisers })
    }

    /// Appends `op` to the log and applies it (with the rows' IVF lists, if computed;
    /// `olds`: `State::plan` of `op`); the caller holds the writer mutex (`_writer`). New
    /// points are appended under the state's read lock (`State::append_rows`); otherwise
    /// the write lock is held for the rows only. The id map is updated under the read lock
    /// (see `State::ids`).
    fn log_and_apply(
        &self,
        _writer: &mut super::WriterState,
        op: WalOp,
        assigned: Option<&Assigned>,
        olds: &[Option<super::Location>],
    ) -> Result<u64> {
        let bytes = op.encode();
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(EngineError::invalid(
                "points",
                format!(
                    "batch encodes to {} MiB, above the {} MiB limit; split it",
                    bytes.len() >> 20,
                    MAX_RECORD_BYTES >> 20
                ),
            ));
        }
        let ticket = match self.wal.append(&bytes) {
            Ok(t) => t,
            Err(e) => return self.mark_failed(e),
        };
        // New points that fit the growing segment's allocation go in under the read
        // lock, searches going on; anything else (replacing or deleting stored rows,
        // growing the allocation) under the write lock, which searches wait for.
        let appended = {
            let state = self.state.read();
            state
                .append_rows(ticket.seq, op, bytes.len(), assigned, olds)
                .map(|changes| changes.apply_to(&mut state.ids.write()))
        };
        if let Err(op) = appended {
            let changes =
                self.state
                    .write()
                    .apply_rows(ticket.seq, op, bytes.len(), assigned, olds);
            let state = self.state.read();
            changes.apply_to(&mut state.ids.write());
        }
        self.fold_ids_if_due();
        Ok(ticket.seq)
    }

    /// Folds the id map's recent numeric ids into its sorted array when due: the O(n)
    /// copy is made under the map's read lock (its readers go on), only the swap under
    /// its write lock; searches wait for neither. The caller holds the writer mutex, so
    /// the map cannot change in between.
    fn fold_ids_if_due(&self) {
        let state = self.state.read();
        let folded = {
            let ids = state.ids.read();
            if !ids.fold_due() {
                return;
            }
            ids.folded_nums()
        };
        let replaced = state.ids.write().install_nums(folded, None);
        drop(state);
        drop(replaced);
    }

    fn wait_durable(&self, seq: u64) -> Result<()> {
        match self.wal.wait_durable(&paradox_storage::WalTicket { seq }) {
            Ok(()) => Ok(()),
            Err(e) => self.mark_failed(e),
        }
    }
}
