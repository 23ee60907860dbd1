//! Sealed segments: immutable container files (`seg-<id>.pdx`) whose vectors are
//! memory-mapped and whose row metadata is decoded from the mapping when read (RAM keeps
//! where each row's metadata starts). Layout in `docs/formats.md` ("Segment file").
//!
//! A segment can also be *frozen*: a former growing segment, immutable and held in RAM
//! while the maintenance worker writes its file. It behaves like any sealed segment
//! (deletes mark its rows, searches scan it exactly) but has no file, no index and is not
//! named by the manifest; the write path's log replay rebuilds it after a crash.

use super::Partition;
use crate::codec::{read_meta, read_meta_payload, read_meta_times, write_meta, Reader, Writer};
use crate::error::{EngineError, Result};
use crate::point::{PointId, RowMeta, RowPayload, Versions};
use paradox_index::{EncodedVectors, HnswIndex};
use paradox_storage::{Container, ContainerWriter};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"PDXSEG\0\0";
const SEGMENT_VERSION: u32 = 1;
const TAG_HEADER: u32 = 1;
const TAG_VECTORS: u32 = 2;
const TAG_META: u32 = 3;

#[derive(Debug, Serialize, Deserialize)]
struct SegmentHeader {
    segment_id: u64,
    dimension: usize,
    rows: usize,
    metric: String,
    /// Random at write time: ties derived files (the graph) to this exact segment, so a
    /// graph built for another segment of the same id (a dropped and recreated
    /// collection) is never loaded.
    #[serde(default)]
    nonce: u64,
}

/// A fresh, practically unique 64-bit value (time, process, counter, mixed).
fn fresh_nonce() -> u64 {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos
        ^ ((std::process::id() as u64) << 40)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A segment's search structure: the HNSW graph, and the compressed copies of the
/// vectors it is traversed with (when the collection asks for an encoding other than
/// f32; the exact re-rank then reads the memory-mapped f32 rows).
#[derive(Debug)]
pub(crate) struct SegmentGraph {
    pub hnsw: HnswIndex,
    pub encoded: Option<EncodedVectors>,
    /// Graphs over the rows of selective payload values (see [`super::PayloadGraphs`]).
    pub payload: super::PayloadGraphs,
}

/// The search structure of a sealed segment: an HNSW graph or an inverted file.
// One per segment, behind an `Arc`: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum SegmentIndex {
    Graph(SegmentGraph),
    Ivf(paradox_index::IvfIndex),
}

/// Where a sealed segment's rows live.
#[derive(Debug)]
enum Rows {
    /// The segment file: vectors memory-mapped, each row's metadata decoded from the
    /// mapped metadata section when asked for. RAM holds only where each row's metadata
    /// starts (4 bytes a row, 8 past 4 GiB of metadata; decoded it would take 72 or more).
    File {
        container: Container,
        starts: RowStarts,
    },
    /// A frozen growing segment, not written yet.
    Memory {
        vectors: Vec<f32>,
        metas: Vec<RowMeta>,
    },
}

/// Offsets of rows in a metadata section.
#[derive(Debug)]
enum RowStarts {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl RowStarts {
    /// Room for `rows` starts in a section of `section_len` bytes.
    fn with_capacity(rows: usize, section_len: usize) -> RowStarts {
        if u32::try_from(section_len).is_ok() {
            RowStarts::Narrow(Vec::with_capacity(rows))
        } else {
            RowStarts::Wide(Vec::with_capacity(rows))
        }
    }

    fn push(&mut self, start: usize) {
        match self {
            // The section is shorter than 4 GiB: every start fits.
            RowStarts::Narrow(starts) => starts.push(start as u32),
            RowStarts::Wide(starts) => starts.push(start as u64),
        }
    }

    fn get(&self, row: usize) -> usize {
        match self {
            RowStarts::Narrow(starts) => starts[row] as usize,
            RowStarts::Wide(starts) => starts[row] as usize,
        }
    }

    fn len(&self) -> usize {
        match self {
            RowStarts::Narrow(starts) => starts.len(),
            RowStarts::Wide(starts) => starts.len(),
        }
    }
}

/// A row's metadata on its way to a new segment file: decoded, or still encoded as in the
/// file it comes from (copied byte for byte, never decoded).
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoredMeta<'a> {
    Decoded(&'a RowMeta),
    Encoded(&'a [u8]),
}

/// An immutable segment backed by a memory-mapped file (or, while frozen, by RAM).
#[derive(Debug)]
pub(crate) struct SealedSegment {
    id: u64,
    dim: usize,
    nonce: u64,
    rows: Rows,
    /// Whether reads are advised random (see [`SealedSegment::advise_random_reads`]).
    random_reads: AtomicBool,
    /// The segment's index, set when loaded or built (in the background) and replaced
    /// when the collection's index config changes; while `None` searches scan the segment
    /// exactly. Searches hold their own `Arc`, so a swap never waits for them.
    index: RwLock<Option<Arc<SegmentIndex>>>,
    /// The rows by IVF list as the growing segment filed them (see [`Partition`]): serves
    /// searches from the seal until the index is installed, then dropped.
    interim: RwLock<Option<Arc<Partition>>>,
    /// Postings of the payloads, built on the first filtered search.
    payload_index: OnceLock<super::PayloadIndex>,
    /// Set when compaction replaced this segment: a background build that finishes
    /// afterwards must not leave its index file behind.
    retired: AtomicBool,
    /// Background index builds queued or running for the segment.
    builds_queued: AtomicUsize,
}

/// A queued build of a segment's index (see [`SealedSegment::queue_build`]).
pub(crate) struct BuildQueued(Arc<SealedSegment>);

impl Drop for BuildQueued {
    fn drop(&mut self) {
        self.0.builds_queued.fetch_sub(1, Ordering::SeqCst);
    }
}

/// File name of segment `id`.
pub(crate) fn segment_file_name(id: u64) -> String {
    format!("seg-{id:010}.pdx")
}

impl SealedSegment {
    /// Writes rows to `path` atomically (temporary file, fsync, rename, fsync directory).
    pub fn write(
        path: &Path,
        segment_id: u64,
        dim: usize,
        metric: &str,
        rows: &[(StoredMeta<'_>, &[f32])],
    ) -> Result<()> {
        let count = rows.len();
        let header = SegmentHeader {
            segment_id,
            dimension: dim,
            rows: count,
            metric: metric.to_string(),
            nonce: fresh_nonce(),
        };
        let mut writer = ContainerWriter::create_temp(path, SEGMENT_MAGIC, SEGMENT_VERSION)?;
        writer.add_section(
            TAG_HEADER,
            &serde_json::to_vec(&header).expect("header serialises"),
        )?;
        writer.begin_section(TAG_VECTORS)?;
        let mut chunk = Vec::with_capacity(1 << 20);
        for (_, vector) in rows {
            crate::codec::extend_f32_le(&mut chunk, vector);
            if chunk.len() >= 1 << 20 {
                writer.write_section_bytes(&chunk)?;
                chunk.clear();
            }
        }
        writer.write_section_bytes(&chunk)?;
        writer.end_section()?;
        writer.begin_section(TAG_META)?;
        chunk.clear();
        for (meta, _) in rows {
            match meta {
                StoredMeta::Decoded(meta) => write_meta(&mut Writer(&mut chunk), meta),
                StoredMeta::Encoded(bytes) => chunk.extend_from_slice(bytes),
            }
            if chunk.len() >= 1 << 20 {
                writer.write_section_bytes(&chunk)?;
                chunk.clear();
            }
        }
        writer.write_section_bytes(&chunk)?;
        writer.end_section()?;
        writer.finish()?;
        Ok(())
    }

    /// Opens and fully verifies a segment file (every section's checksum is checked and
    /// every row's metadata decoded once; only where each row starts is kept).
    pub fn open(path: &Path, expected_id: u64, dim: usize) -> Result<SealedSegment> {
        let container = Container::open(path, SEGMENT_MAGIC, SEGMENT_VERSION)?;
        let corrupt = |reason: String| EngineError::Corrupt {
            path: path.display().to_string(),
            reason,
        };
        let header: SegmentHeader = serde_json::from_slice(container.section(TAG_HEADER)?)
            .map_err(|e| corrupt(format!("segment header: {e}")))?;
        if header.segment_id != expected_id || header.dimension != dim {
            return Err(corrupt(format!(
                "header says segment {} of dimension {}, manifest expects segment {expected_id} of dimension {dim}",
                header.segment_id, header.dimension
            )));
        }
        let vectors = container.section(TAG_VECTORS)?;
        if vectors.len() != header.rows * dim * 4 {
            return Err(corrupt(format!(
                "vector section holds {} bytes, expected {} rows x {dim} x 4",
                vectors.len(),
                header.rows
            )));
        }
        if !cfg!(target_endian = "little") || vectors.as_ptr().align_offset(4) != 0 {
            return Err(corrupt(
                "vector section is not 4-byte aligned little-endian f32".into(),
            ));
        }
        let section = container.section(TAG_META)?;
        let mut reader = Reader::new(section);
        let mut starts = RowStarts::with_capacity(header.rows, section.len());
        let mut versions = Versions::default();
        for row in 0..header.rows {
            starts.push(reader.position());
            read_meta(&mut reader, &mut versions)
                .map_err(|e| corrupt(format!("row {row}: {e}")))?;
        }
        if !reader.is_empty() {
            return Err(corrupt(
                "trailing bytes after the last row's metadata".into(),
            ));
        }
        Ok(SealedSegment {
            id: expected_id,
            dim,
            nonce: header.nonce,
            rows: Rows::File { starts, container },
            random_reads: AtomicBool::new(false),
            index: RwLock::new(None),
            interim: RwLock::new(None),
            payload_index: OnceLock::new(),
            retired: AtomicBool::new(false),
            builds_queued: AtomicUsize::new(0),
        })
    }

    /// A frozen segment: the rows of a former growing segment, held in RAM until its
    /// file is written (`vectors` row-major, one `dim`-long row per meta), searched
    /// through the growing segment's `partition` if it had one.
    pub fn frozen(
        id: u64,
        dim: usize,
        vectors: Vec<f32>,
        metas: Vec<RowMeta>,
        partition: Option<Arc<Partition>>,
    ) -> SealedSegment {
        debug_assert_eq!(vectors.len(), metas.len() * dim);
        SealedSegment {
            id,
            dim,
            nonce: 0,
            rows: Rows::Memory { vectors, metas },
            random_reads: AtomicBool::new(false),
            index: RwLock::new(None),
            interim: RwLock::new(partition),
            payload_index: OnceLock::new(),
            retired: AtomicBool::new(false),
            builds_queued: AtomicUsize::new(0),
        }
    }

    /// Whether the segment is frozen (in RAM, no file yet).
    pub fn is_frozen(&self) -> bool {
        matches!(self.rows, Rows::Memory { .. })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The random value written in the header (see `SegmentHeader::nonce`).
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// Bytes of the segment file (0 while frozen).
    pub fn file_len(&self) -> u64 {
        match &self.rows {
            Rows::File { container, .. } => container.file_len(),
            Rows::Memory { .. } => 0,
        }
    }

    /// Bytes the segment's rows take: the file, or (frozen) vectors plus an estimate of
    /// the metadata. The merge policy sizes segments by this.
    pub fn bytes(&self) -> u64 {
        match &self.rows {
            Rows::File { container, .. } => container.file_len(),
            Rows::Memory { vectors, metas } => (vectors.len() * 4 + metas.len() * 64) as u64,
        }
    }

    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::File { starts, .. } => starts.len(),
            Rows::Memory { metas, .. } => metas.len(),
        }
    }

    /// Whether the vectors will be read a row here and there (an index whose data stays on
    /// disk: each page fault then reads one page, not the disk's read-ahead around it) or
    /// scanned (the default). The metadata section follows: with random reads, a search's
    /// results ask for their rows' metadata pages all at once ([`Self::prefetch_metas`]).
    pub fn advise_random_reads(&self, random: bool) {
        if let Rows::File { container, .. } = &self.rows {
            container.advise_random_reads(TAG_VECTORS, random);
            container.advise_random_reads(TAG_META, random);
            self.random_reads.store(random, Ordering::Relaxed);
        }
    }

    /// All vectors, row-major, straight from the mapping.
    pub fn vectors(&self) -> &[f32] {
        let container = match &self.rows {
            Rows::File { container, .. } => container,
            Rows::Memory { vectors, .. } => return vectors,
        };
        let bytes = container
            .section(TAG_VECTORS)
            .expect("vector section verified at open");
        // SAFETY: `open` checked that the section is 4-byte aligned, holds exactly
        // rows * dim f32 values, and that the target is little-endian; every bit pattern is
        // a valid f32; the mapping is read-only and lives as long as `self.rows`.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), bytes.len() / 4) }
    }

    pub fn vector(&self, row: u32) -> &[f32] {
        let start = row as usize * self.dim;
        &self.vectors()[start..start + self.dim]
    }

    /// Row `row`'s metadata as encoded in the file, or `None` while frozen.
    fn encoded_meta(&self, row: u32) -> Option<&[u8]> {
        let Rows::File { container, starts } = &self.rows else {
            return None;
        };
        let section = container
            .section(TAG_META)
            .expect("metadata section verified at open");
        let row = row as usize;
        let end = if row + 1 < starts.len() {
            starts.get(row + 1)
        } else {
            section.len()
        };
        Some(&section[starts.get(row)..end])
    }

    /// Decodes part of row `row`'s metadata from the file with `read`, or takes it from
    /// RAM with `take` while frozen. Every row was decoded at open and the mapping is
    /// read-only (segment files are replaced by rename, never rewritten), so a decode
    /// cannot fail unless the file was modified in place behind the engine.
    fn read_row<'a, T>(
        &'a self,
        row: u32,
        read: impl FnOnce(&mut Reader<'a>) -> crate::codec::DResult<T>,
        take: impl FnOnce(&'a RowMeta) -> T,
    ) -> T {
        match (&self.rows, self.encoded_meta(row)) {
            (Rows::Memory { metas, .. }, _) => take(&metas[row as usize]),
            (Rows::File { .. }, bytes) => read(&mut Reader::new(bytes.unwrap_or_default()))
                .expect("row metadata verified at open"),
        }
    }

    /// Row `row`'s metadata: borrowed while frozen, decoded from the file otherwise.
    pub fn meta(&self, row: u32) -> Cow<'_, RowMeta> {
        self.read_row(
            row,
            |r| read_meta(r, &mut Versions::default()).map(Cow::Owned),
            Cow::Borrowed,
        )
    }

    /// Row `row`'s metadata for a new segment file, not decoded.
    pub fn stored_meta(&self, row: u32) -> StoredMeta<'_> {
        match (&self.rows, self.encoded_meta(row)) {
            (Rows::Memory { metas, .. }, _) => StoredMeta::Decoded(&metas[row as usize]),
            (Rows::File { .. }, bytes) => StoredMeta::Encoded(bytes.unwrap_or_default()),
        }
    }

    /// Row `row`'s payload, without decoding the rest.
    pub fn payload(&self, row: u32) -> Cow<'_, RowPayload> {
        self.read_row(
            row,
            |r| read_meta_payload(r).map(Cow::Owned),
            |meta| Cow::Borrowed(&meta.payload),
        )
    }

    /// Row `row`'s `(created_at, updated_at)`, without decoding the rest.
    pub fn times(&self, row: u32) -> (i64, i64) {
        self.read_row(row, read_meta_times, |meta| {
            (meta.created_at, meta.updated_at)
        })
    }

    /// Row `row`'s id, without decoding the rest.
    pub fn id_of(&self, row: u32) -> PointId {
        self.read_row(row, |r| r.id(), |meta| meta.id.clone())
    }

    /// Asks for the metadata pages of `rows` at once when reads are advised random, so
    /// that decoding them after waits for overlapping reads instead of one fault each.
    pub fn prefetch_metas(&self, rows: impl Iterator<Item = u32>) {
        if self.random_reads.load(Ordering::Relaxed) {
            for row in rows {
                if let Some(bytes) = self.encoded_meta(row) {
                    paradox_index::advise_will_need(bytes);
                }
            }
        }
    }

    /// Every row's id, in row order.
    pub fn ids(&self) -> impl Iterator<Item = PointId> + '_ {
        (0..self.len() as u32).map(|row| self.id_of(row))
    }

    /// The index, once loaded or built.
    pub fn index(&self) -> Option<Arc<SegmentIndex>> {
        self.index.read().clone()
    }

    /// The payload index, built on first use (segments are immutable, so it never
    /// goes stale).
    pub fn payload_index(&self) -> &super::PayloadIndex {
        self.payload_index.get_or_init(|| {
            super::PayloadIndex::build((0..self.len() as u32).map(|row| self.payload(row)))
        })
    }

    /// Marks the segment as replaced by compaction.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Whether compaction replaced the segment.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// Counts a background index build queued for the segment, until the returned guard
    /// is dropped (when the build ended, however it ended).
    pub(crate) fn queue_build(self: &Arc<Self>) -> BuildQueued {
        self.builds_queued.fetch_add(1, Ordering::SeqCst);
        BuildQueued(self.clone())
    }

    /// Whether a background index build for the segment is queued or running: merges
    /// leave it alone until it lands (merging it would build its rows again, from
    /// scratch, instead of carrying the codes of indexed segments).
    pub fn build_queued(&self) -> bool {
        self.builds_queued.load(Ordering::SeqCst) > 0
    }

    /// Installs (or replaces) the index; the interim partition is no longer needed.
    pub fn set_index(&self, index: SegmentIndex) {
        *self.index.write() = Some(Arc::new(index));
        *self.interim.write() = None;
    }

    /// Drops the index (and the interim partition): the segment is scanned exactly from
    /// now on.
    pub fn clear_index(&self) {
        *self.index.write() = None;
        *self.interim.write() = None;
    }

    /// The partition serving searches until the index is installed (see the field).
    pub fn interim(&self) -> Option<Arc<Partition>> {
        self.interim.read().clone()
    }

    /// Gives the segment the partition of the frozen segment it was written from (same
    /// rows, same order), before the segment is published (unless its index is already
    /// installed); `None` drops the partition.
    pub fn set_interim(&self, partition: Option<Arc<Partition>>) {
        if self.index.read().is_none() {
            *self.interim.write() = partition;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::{Payload, PointId, Provenance};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        #[test]
        fn segment_file_round_trip(dim in 1usize..24, rows in 0usize..120, seed in any::<u32>()) {
            let metas: Vec<RowMeta> = (0..rows)
                .map(|i| RowMeta {
                    id: if i % 3 == 0 { PointId::Str(format!("s{i}")) } else { PointId::Num(i as u64 * 7) },
                    payload: serde_json::json!({"i": i, "tag": format!("t{}", i % 5)}).as_object().cloned().unwrap_or_else(Payload::new).into(),
                    encoder_version: (i % 2 == 0).then(|| "minilm@1".into()),
                    provenance: (i % 4 == 0).then(|| Box::new(Provenance { source: Some(format!("doc{i}")), ..Default::default() })),
                    created_at: i as i64,
                    updated_at: i as i64 + seed as i64,
                })
                .collect();
            let vectors: Vec<f32> = (0..rows * dim).map(|j| ((j as u32 ^ seed) % 1000) as f32 / 7.0).collect();
            let rows_ref: Vec<(StoredMeta<'_>, &[f32])> = metas.iter().map(StoredMeta::Decoded).zip(vectors.chunks_exact(dim)).collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(segment_file_name(3));
            SealedSegment::write(&path, 3, dim, "l2", &rows_ref).unwrap();
            let seg = SealedSegment::open(&path, 3, dim).unwrap();
            prop_assert_eq!(seg.len(), rows);
            prop_assert_eq!(seg.vectors(), &vectors[..]);
            let read: Vec<RowMeta> = (0..rows as u32).map(|row| seg.meta(row).into_owned()).collect();
            prop_assert_eq!(&read, &metas);
            let ids: Vec<PointId> = seg.ids().collect();
            prop_assert_eq!(ids, metas.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
            for (row, meta) in metas.iter().enumerate() {
                prop_assert_eq!(seg.times(row as u32), (meta.created_at, meta.updated_at));
                prop_assert_eq!(&*seg.payload(row as u32), &meta.payload);
            }
            prop_assert!(SealedSegment::open(&path, 4, dim).is_err());
            prop_assert!(SealedSegment::open(&path, 3, dim + 1).is_err());
        }
    }
}
