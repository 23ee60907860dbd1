//! IVF: an inverted file over k-means cells.
//!
//! Training clusters the rows into `nlist` cells (the coarse quantiser); every row is
//! filed in the list of its nearest centroid. A search ranks the centroids by distance
//! to the query, visits the `nprobe` nearest lists, and scores only their rows. Lists
//! are contiguous: one array of row numbers and one of codes, both ordered by list, with
//! `offsets[l]..offsets[l + 1]` naming list `l`.
//!
//! What a list holds per row depends on the codec ([`IvfCodec`]):
//! * `Flat`: nothing but the row number; rows are scored exactly from the segment's
//!   vectors (no re-rank needed).
//! * `Pq { m }`: an `m`-byte product-quantisation code of the row's *residual*
//!   `x − centroid` (residuals are small and alike across cells, so one codebook fits
//!   them far better than the raw vectors).
//! * `Sq8`: a byte per dimension of the residual, with per-dimension ranges.
//! * `OpqPq { m }`: PQ codes of the residual after a learned rotation (see [`Rotation`]),
//!   which balances the sub-spaces' variance and lowers the quantisation error.
//! * `Pq4 { m }`: 4-bit PQ codes of the residual (`m / 2` bytes), stored per list in
//!   blocks of 32 rows and scanned with in-register table lookups (see [`crate::pq4`]);
//!   meant for small codes with a generous re-rank.
//!
//! Compressed codes give approximate distances; the best `rerank × k` candidates are
//! re-scored exactly from the full vectors (memory-mapped in a sealed segment). With
//! `rerank = 0` the approximate order is returned as is and the full vectors are never
//! read.
//!
//! Distances from codes, for the two internal metrics:
//! * L2: `‖q − c − r‖²` is the L2 distance of the residual query `q − c` to `r`: a PQ table
//!   (or SQ8 query) is prepared per visited list.
//! * Dot (and cosine on unit vectors): `−q·(c + r) = −q·c − q·r`: one table per query,
//!   plus a constant per list.
//!
//! The coarse quantiser is itself searched exactly, or through an HNSW graph over the
//! centroids when there are at least [`COARSE_HNSW_MIN_LISTS`] of them.

mod batch;
mod cache;
mod group;
mod persist;
mod scan;

pub use cache::{ListCache, ListCacheStats};
pub use group::GroupPart;
pub use persist::IvfDecodeError;

use scan::QueryScan;

use crate::kmeans::{self, KMeansParams};
use crate::opq::Rotation;
use crate::pq::{ProductQuantizer, PQ_CODEWORDS};
use crate::pq4::{self, Pq4Quantizer, PQ4_CODEWORDS};
use crate::{HnswIndex, HnswParams, RowFilter, SearchParams, SharedBytes, VectorIndex, VectorView};
use paradox_kernels::{Metric, Neighbor, Sq8Quantizer, TopK};
use rayon::prelude::*;

/// Rows [`IvfIndex::assign_lists`] assigns on the calling thread; more go to the pool.
pub const SERIAL_ASSIGN_ROWS: usize = 4096;
use std::sync::{Arc, OnceLock};

/// Lists from which the coarse quantiser is an HNSW graph rather than a scan.
pub const COARSE_HNSW_MIN_LISTS: usize = 16_384;

/// What an inverted list stores per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvfCodec {
    /// Row numbers only; exact distances from the full vectors.
    Flat,
    /// Product quantisation of the residual, `m` bytes per row (`m` divides the dimension).
    Pq {
        /// Sub-quantisers (bytes per code).
        m: usize,
    },
    /// 8-bit scalar quantisation of the residual, one byte per dimension.
    Sq8,
    /// Product quantisation of the residual after a learned rotation (OPQ), `m` bytes per
    /// row.
    OpqPq {
        /// Sub-quantisers (bytes per code).
        m: usize,
    },
    /// 4-bit product quantisation of the residual with fast scan: `m` sub-quantisers of
    /// 16 codewords, `m / 2` bytes per row (`m` divides the dimension).
    Pq4 {
        /// Sub-quantisers (half a byte each).
        m: usize,
    },
}

impl IvfCodec {
    /// Bytes of code per row for vectors of `dim` values (for `Pq4`, the nominal
    /// `⌈m / 2⌉`: lists are padded to whole blocks of 32 rows).
    pub fn code_bytes(self, dim: usize) -> usize {
        match self {
            IvfCodec::Flat => 0,
            IvfCodec::Pq { m } | IvfCodec::OpqPq { m } => m,
            IvfCodec::Sq8 => dim,
            IvfCodec::Pq4 { m } => m.div_ceil(2),
        }
    }

    /// Short name used in configs and output.
    pub fn as_str(self) -> &'static str {
        match self {
            IvfCodec::Flat => "flat",
            IvfCodec::Pq { .. } => "pq",
            IvfCodec::Sq8 => "sq8",
            IvfCodec::OpqPq { .. } => "opq_pq",
            IvfCodec::Pq4 { .. } => "pq4",
        }
    }
}

/// How an IVF index is built and searched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IvfParams {
    /// Cells (lists). Capped at the number of rows when building.
    pub nlist: usize,
    /// Default lists visited per search (per-request `nprobe` overrides it).
    pub nprobe: usize,
    /// What lists store per row.
    pub codec: IvfCodec,
    /// With a compressed codec: candidates re-ranked exactly = `rerank × k` (0 = no
    /// re-rank: approximate distances are returned).
    pub rerank: usize,
    /// k-means iterations for the coarse quantiser and the PQ codebooks.
    pub train_iterations: usize,
    /// Training rows per centroid (a uniform sample; every row is still filed).
    pub max_points_per_centroid: usize,
    /// Capacity-capped (balanced) cells.
    pub balanced: bool,
    /// Seed of every random choice in training.
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams {
            nlist: 1024,
            nprobe: 16,
            codec: IvfCodec::Pq { m: 16 },
            rerank: 4,
            train_iterations: 20,
            max_points_per_centroid: 256,
            balanced: false,
            seed: 0x5EED,
        }
    }
}

impl IvfParams {
    /// Checks the parameters against a dimension; the message names the bad field.
    pub fn validate(&self, dim: usize) -> Result<(), String> {
        if self.nlist == 0 || self.nlist > 1 << 20 {
            return Err(format!(
                "ivf nlist must be between 1 and 1048576, got {}",
                self.nlist
            ));
        }
        if self.nprobe == 0 {
            return Err("ivf nprobe must be at least 1".into());
        }
        if self.rerank > 64 {
            return Err(format!(
                "ivf rerank must be between 0 and 64, got {}",
                self.rerank
            ));
        }
        if self.train_iterations == 0 || self.train_iterations > 1000 {
            return Err(format!(
                "ivf train_iterations must be between 1 and 1000, got {}",
                self.train_iterations
            ));
        }
        if let IvfCodec::Pq { m } | IvfCodec::OpqPq { m } | IvfCodec::Pq4 { m } = self.codec {
            if m == 0 || m > 256 || !dim.is_multiple_of(m) {
                return Err(format!(
                    "ivf pq m must divide the dimension {dim} and be at most 256, got {m}"
                ));
            }
        }
        Ok(())
    }
}

/// Where the codes of the lists live.
enum Codes {
    /// Held by the index.
    Owned(Vec<u8>),
    /// `len` bytes at `start` of a shared buffer (the index file, memory-mapped): the OS
    /// pages lists in on demand and evicts cold ones under memory pressure.
    Shared {
        bytes: SharedBytes,
        start: usize,
        len: usize,
    },
    /// Read list by list from the index file into a [`ListCache`]; the mapping (`bytes`,
    /// `start`, `len` as for `Shared`) is kept only to re-encode the index.
    Paged {
        bytes: SharedBytes,
        start: usize,
        len: usize,
        paged: cache::PagedCodes,
    },
}

impl Codes {
    fn get(&self) -> &[u8] {
        match self {
            Codes::Owned(codes) => codes,
            // The range was checked against the buffer when the index was decoded.
            Codes::Shared { bytes, start, len }
            | Codes::Paged {
                bytes, start, len, ..
            } => &(**bytes).as_ref()[*start..*start + *len],
        }
    }
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codes::Owned(codes) => write!(f, "Codes::Owned({} bytes)", codes.len()),
            Codes::Shared { start, len, .. } => {
                write!(f, "Codes::Shared({len} bytes at {start})")
            }
            Codes::Paged { start, len, .. } => {
                write!(f, "Codes::Paged({len} bytes at {start})")
            }
        }
    }
}

/// One list's codes: borrowed from the index (or its mapping), or held by the list cache.
enum ListCodes<'a> {
    Borrowed(&'a [u8]),
    Cached(Arc<[u8]>),
}

impl std::ops::Deref for ListCodes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ListCodes::Borrowed(bytes) => bytes,
            ListCodes::Cached(bytes) => bytes,
        }
    }
}

/// The bytes of a row of floats.
fn as_bytes(row: &[f32]) -> &[u8] {
    // SAFETY: any initialised f32 is 4 initialised bytes; same address and lifetime.
    unsafe { std::slice::from_raw_parts(row.as_ptr().cast::<u8>(), std::mem::size_of_val(row)) }
}

/// `madvise(MADV_WILLNEED)` over the pages of `bytes`, which must lie in a memory map
/// (best effort: a hint, errors ignored; a no-op off Unix).
pub fn advise_will_need(bytes: &[u8]) {
    #[cfg(unix)]
    {
        if bytes.is_empty() {
            return;
        }
        const PAGE: usize = 4096;
        let addr = bytes.as_ptr() as usize;
        let start = addr & !(PAGE - 1);
        let len = addr + bytes.len() - start;
        // SAFETY: `[start, start + len)` covers only pages of the mapping `bytes` lies in
        // (rounded down to its first page); MADV_WILLNEED is a hint that never changes the
        // contents or validity of the mapping, and an error is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_WILLNEED);
        }
    }
    #[cfg(not(unix))]
    let _ = bytes;
}

/// The trained quantiser of the residual codes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Residuals {
    Flat,
    Pq(ProductQuantizer),
    Sq8(Sq8Quantizer),
    /// Codes of `residual · R`, with the centroids rotated once (`nlist × dim`) so a
    /// query's rotated residual is `q·R − c·R`.
    OpqPq {
        rotation: Rotation,
        pq: ProductQuantizer,
        rotated_centroids: Vec<f32>,
    },
    Pq4(Pq4Quantizer),
}

/// An IVF index over the rows of one segment. See the module docs.
#[derive(Debug)]
pub struct IvfIndex {
    params: IvfParams,
    dim: usize,
    metric: Metric,
    /// `nlist × dim`.
    centroids: Vec<f32>,
    /// `nlist + 1` prefix offsets into `rows` (and, times the code size, into `codes`).
    offsets: Vec<u32>,
    rows: Vec<u32>,
    /// `Pq4` only: `nlist + 1` prefix counts of 32-row code blocks (list `l`'s codes are
    /// blocks `blocks[l]..blocks[l + 1]`); empty for the other codecs.
    blocks: Vec<u32>,
    codes: Codes,
    residuals: Residuals,
    /// Graph over the centroids when there are many.
    coarse: Option<Arc<HnswIndex>>,
    /// How well the centroids fit: see [`IvfFit`]. Persisted from format 3 on (unknown
    /// after reading an older file).
    fit: IvfFit,
    /// SQ8 under L2 with the codes held in RAM: each row's code norm
    /// ([`Sq8Quantizer::code_norm`]), in code order, made on first use (see
    /// [`IvfIndex::sq8_norms`]).
    sq8_norms: OnceLock<Vec<f32>>,
    /// See [`IvfIndex::quantisers_id`]; made on first use.
    quantisers_id: OnceLock<[u64; 2]>,
}

/// How well an index's centroids fit its rows, and the rows they were trained on: mean
/// squared distance of a row to its list's centroid. Kept in the index's bytes (from
/// format 3); `None` where unknown (an index read from an older file).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IvfFit {
    /// Over this index's rows.
    pub rows_error: Option<f32>,
    /// Over the rows of the build that trained these centroids.
    pub trained_error: Option<f32>,
    /// Rows of the build that trained these centroids and codebooks.
    pub trained_rows: Option<u64>,
}

impl IvfFit {
    /// `rows_error / trained_error`: above 1 the rows sit farther from the centroids than
    /// the training rows did (the data drifted from the quantisers).
    pub fn drift(&self) -> Option<f32> {
        match (self.rows_error, self.trained_error) {
            (Some(rows), Some(trained)) if trained > 0.0 => Some(rows / trained),
            (Some(rows), Some(_)) => Some(if rows > 0.0 { f32::INFINITY } else { 1.0 }),
            _ => None,
        }
    }
}

impl IvfIndex {
    /// Trains the quantisers on `vectors` and files every row. Errors name a parameter
    /// that does not fit the data (e.g. PQ `m` not dividing the dimension).
    pub fn build(vectors: VectorView<'_>, params: IvfParams) -> Result<IvfIndex, String> {
        let dim = vectors.dim;
        params.validate(dim)?;
        let n = vectors.len();
        let nlist = params.nlist.min(n).max(1);
        let centroids = if n == 0 {
            vec![0.0; dim]
        } else {
            kmeans::train(
                vectors.data,
                dim,
                &KMeansParams {
                    k: nlist,
                    iterations: params.train_iterations,
                    max_points_per_centroid: params.max_points_per_centroid,
                    seed: params.seed,
                    balanced: params.balanced,
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?
        };
        let assigned = kmeans::assign(vectors.data, dim, &centroids);
        let residual_of = |row: u32, out: &mut [f32]| {
            residual(vectors, &centroids, assigned[row as usize].0, row, out);
        };
        let residuals = match params.codec {
            IvfCodec::Flat => Residuals::Flat,
            IvfCodec::Pq { m } => {
                let sample = padded_sample(
                    residual_sample(n, dim, 64 * PQ_CODEWORDS, params.seed, &residual_of),
                    dim,
                );
                Residuals::Pq(ProductQuantizer::train(
                    &sample,
                    dim,
                    m,
                    params.train_iterations,
                    params.seed,
                )?)
            }
            IvfCodec::Sq8 => {
                let sample = residual_sample(n, dim, 65_536, params.seed, &residual_of);
                Residuals::Sq8(Sq8Quantizer::fit(&sample, dim))
            }
            IvfCodec::OpqPq { m } => {
                let sample = padded_sample(
                    residual_sample(n, dim, 64 * PQ_CODEWORDS, params.seed, &residual_of),
                    dim,
                );
                let rotation =
                    Rotation::learn(&sample, dim, m, OPQ_ROUNDS, OPQ_PQ_ITERATIONS, params.seed)?;
                let mut rotated = vec![0f32; sample.len()];
                rotation.apply_rows(&sample, &mut rotated);
                let pq = ProductQuantizer::train(
                    &rotated,
                    dim,
                    m,
                    params.train_iterations,
                    params.seed,
                )?;
                let mut rotated_centroids = vec![0f32; centroids.len()];
                rotation.apply_rows(&centroids, &mut rotated_centroids);
                Residuals::OpqPq {
                    rotation,
                    pq,
                    rotated_centroids,
                }
            }
            IvfCodec::Pq4 { m } => {
                let sample = residual_sample(n, dim, 64 * PQ_CODEWORDS, params.seed, &residual_of);
                let sample = if sample.len() < PQ4_CODEWORDS * dim {
                    padded_sample(sample, dim)
                } else {
                    sample
                };
                Residuals::Pq4(Pq4Quantizer::train(
                    &sample,
                    dim,
                    m,
                    params.train_iterations,
                    params.seed,
                )?)
            }
        };
        Ok(IvfIndex::file(
            vectors,
            IvfParams { nlist, ..params },
            centroids,
            residuals,
            &assigned,
            None,
            None,
        ))
    }

    /// An index of `vectors` with this index's trained quantisers (centroids and residual
    /// codebooks): rows are only assigned and encoded, no training, so it costs a small
    /// part of [`Self::build`]. Meant for rows from the distribution the quantisers were
    /// trained on (the next segments of a steady stream). Errors on another dimension or
    /// metric.
    pub fn build_like(&self, vectors: VectorView<'_>) -> Result<IvfIndex, String> {
        self.build_like_listed(vectors, &[])
    }

    /// [`Self::build_like`] for rows some of which are already filed with these
    /// quantisers: `lists[row]` is row `row`'s list (as [`Self::assign_lists`] gave it),
    /// or `u32::MAX` (or out of range, or past the end of `lists`) for a row to assign
    /// here. A segment filed as its rows arrived is then indexed without assigning them
    /// again (the largest part of filing: a distance to every centroid per row); only
    /// each row's distance to its own centroid is computed, for the fit. Lists from a
    /// coarse graph (many lists) are approximate: with one, every row is assigned here.
    pub fn build_like_listed(
        &self,
        vectors: VectorView<'_>,
        lists: &[u32],
    ) -> Result<IvfIndex, String> {
        if vectors.dim != self.dim || vectors.metric != self.metric {
            return Err(format!(
                "vectors of dimension {} ({:?}) for quantisers trained on dimension {} ({:?})",
                vectors.dim, vectors.metric, self.dim, self.metric
            ));
        }
        let dim = self.dim.max(1);
        let nlist = self.nlist();
        let known = |row: usize| {
            lists
                .get(row)
                .copied()
                .filter(|&l| (l as usize) < nlist && self.coarse.is_none())
        };
        let mut assigned: Vec<(u32, f32)> = vectors
            .data
            .par_chunks_exact(dim)
            .enumerate()
            .map(|(row, x)| match known(row) {
                Some(l) => {
                    let l = l as usize;
                    let centroid = &self.centroids[l * dim..(l + 1) * dim];
                    (l as u32, paradox_kernels::l2_squared(x, centroid))
                }
                None => (u32::MAX, 0.0),
            })
            .collect();
        let missing: Vec<usize> = (0..assigned.len())
            .filter(|&row| assigned[row].0 == u32::MAX)
            .collect();
        if !missing.is_empty() {
            let rows: Vec<f32> = missing
                .iter()
                .flat_map(|&row| vectors.row(row).iter().copied())
                .collect();
            for (&row, found) in
                missing
                    .iter()
                    .zip(kmeans::assign(&rows, self.dim, &self.centroids))
            {
                assigned[row] = found;
            }
        }
        Ok(IvfIndex::file(
            vectors,
            self.params,
            self.centroids.clone(),
            self.residuals.clone(),
            &assigned,
            self.coarse.clone(),
            Some(self.fit),
        ))
    }

    /// Files every row of `vectors` in its assigned list and encodes its residual; the
    /// graph over the centroids is `coarse`, or built here when there are many lists.
    /// `trained` is the fit of reused centroids, whose training error and rows carry
    /// over (`None`: trained on these rows, whose error and count they then are).
    #[allow(clippy::too_many_arguments)]
    fn file(
        vectors: VectorView<'_>,
        params: IvfParams,
        centroids: Vec<f32>,
        residuals: Residuals,
        assigned: &[(u32, f32)],
        coarse: Option<Arc<HnswIndex>>,
        trained: Option<IvfFit>,
    ) -> IvfIndex {
        let rows_error = (!assigned.is_empty()).then(|| {
            (assigned.iter().map(|&(_, d)| d as f64).sum::<f64>() / assigned.len() as f64) as f32
        });
        let fit = IvfFit {
            rows_error,
            trained_error: trained.map_or(rows_error, |t| t.trained_error),
            trained_rows: trained.map_or(Some(vectors.len() as u64), |t| t.trained_rows),
        };
        let (dim, n, nlist) = (vectors.dim, vectors.len(), params.nlist);
        // Counting sort of rows by list.
        let mut offsets = vec![0u32; nlist + 1];
        for &(list, _) in assigned {
            offsets[list as usize + 1] += 1;
        }
        for l in 0..nlist {
            offsets[l + 1] += offsets[l];
        }
        let mut cursor = offsets.clone();
        let mut rows = vec![0u32; n];
        for (row, &(list, _)) in assigned.iter().enumerate() {
            let slot = &mut cursor[list as usize];
            rows[*slot as usize] = row as u32;
            *slot += 1;
        }

        let residual_of = |row: u32, out: &mut [f32]| {
            residual(vectors, &centroids, assigned[row as usize].0, row, out);
        };

        let code_bytes = params.codec.code_bytes(dim);
        let blocks = match &residuals {
            Residuals::Pq4(_) => block_prefix(&offsets),
            _ => Vec::new(),
        };
        let mut codes = vec![0u8; n * code_bytes];
        if let Residuals::Pq4(pq) = &residuals {
            codes = pq4_codes(pq, &offsets, &blocks, &rows, dim, &residual_of);
        } else if code_bytes > 0 {
            codes
                .par_chunks_mut(code_bytes * 256)
                .zip(rows.par_chunks(256))
                .for_each(|(codes, rows)| {
                    let mut residual = vec![0f32; dim];
                    let mut rotated = vec![0f32; dim];
                    for (code, &row) in codes.chunks_exact_mut(code_bytes).zip(rows) {
                        residual_of(row, &mut residual);
                        match &residuals {
                            Residuals::Pq(pq) => pq.encode(&residual, code),
                            Residuals::Sq8(sq) => sq.encode(&residual, code),
                            Residuals::OpqPq { rotation, pq, .. } => {
                                rotation.apply(&residual, &mut rotated);
                                pq.encode(&rotated, code);
                            }
                            Residuals::Flat | Residuals::Pq4(_) => {}
                        }
                    }
                });
        }
        let coarse = coarse.or_else(|| {
            (nlist >= COARSE_HNSW_MIN_LISTS).then(|| Arc::new(coarse_graph(&centroids, dim)))
        });
        IvfIndex {
            params,
            dim,
            metric: vectors.metric,
            centroids,
            offsets,
            rows,
            blocks,
            codes: Codes::Owned(codes),
            residuals,
            coarse,
            fit,
            sq8_norms: OnceLock::new(),
            quantisers_id: OnceLock::new(),
        }
    }

    /// The byte range of list `l`'s codes.
    fn list_code_range(&self, l: usize) -> std::ops::Range<usize> {
        match &self.residuals {
            Residuals::Pq4(pq) => {
                let block = pq4::block_bytes(pq.m());
                self.blocks[l] as usize * block..self.blocks[l + 1] as usize * block
            }
            _ => {
                let code_bytes = self.params.codec.code_bytes(self.dim);
                self.offsets[l] as usize * code_bytes..self.offsets[l + 1] as usize * code_bytes
            }
        }
    }

    /// The list each row of `data` (row-major, this index's dimension) would be filed in:
    /// its nearest centroid, found through the graph over the centroids when there is one
    /// (approximate: the cost of a row stays ~`ef` distances however many lists). Lets a
    /// caller partition rows with these quantisers without building an index.
    ///
    /// Batches of up to [`SERIAL_ASSIGN_ROWS`] rows run on the calling thread: a writer's
    /// batch then never queues on rayon's global pool among the searches it serves (at
    /// 20k inserts/s that queueing was a search's most frequent wait). Larger ones are
    /// split across the pool.
    pub fn assign_lists(&self, data: &[f32]) -> Vec<u32> {
        let dim = self.dim.max(1);
        let serial = data.len() / dim <= SERIAL_ASSIGN_ROWS;
        if self.coarse.is_some() {
            let nearest = |row: &[f32]| self.probe(row, 1).first().map_or(0, |n| n.key as u32);
            return if serial {
                data.chunks_exact(dim).map(nearest).collect()
            } else {
                data.par_chunks_exact(dim).map(nearest).collect()
            };
        }
        let assigned = if serial {
            kmeans::assign_serial(data, self.dim, &self.centroids)
        } else {
            kmeans::assign(data, self.dim, &self.centroids)
        };
        assigned.into_iter().map(|(list, _)| list).collect()
    }

    /// The `nprobe` lists nearest to `query` (at most `nlist`), nearest first.
    pub fn nearest_lists(&self, query: &[f32], nprobe: usize) -> Vec<u32> {
        self.probe(query, nprobe)
            .into_iter()
            .map(|n| n.key as u32)
            .collect()
    }

    /// The parameters it was built with (`nlist` as actually used).
    pub fn params(&self) -> &IvfParams {
        &self.params
    }

    /// Whether `other` files and encodes rows with the same quantisers (centroids and
    /// residual codebooks) as this index.
    pub fn same_quantisers(&self, other: &IvfIndex) -> bool {
        self.centroids == other.centroids && self.residuals == other.residuals
    }

    /// How well the centroids fit the rows (see [`IvfFit`]).
    pub fn fit(&self) -> IvfFit {
        self.fit
    }

    /// An index over rows gathered from `parts`, made by copying their codes list by list
    /// (no assignment, no encoding): what a merge of segments indexed with the same
    /// quantisers needs. Each part is an index and, per row of it, that row's row in the
    /// result or `u32::MAX` for a row left out; the result has `rows` rows, each given
    /// exactly once. The parts' quantisers must be the same; pq4 codes, packed in blocks
    /// of 32 rows, are not merged (an error: build instead).
    pub fn merged(parts: &[(&IvfIndex, &[u32])], rows: usize) -> Result<IvfIndex, String> {
        let Some(&(first, _)) = parts.first() else {
            return Err("nothing to merge".into());
        };
        if matches!(first.residuals, Residuals::Pq4(_)) {
            return Err("pq4 codes are packed in blocks of 32 rows: build instead".into());
        }
        if rows > u32::MAX as usize - 1 {
            return Err(format!("{rows} rows: too many for one index"));
        }
        for (index, map) in parts {
            if index.params.codec != first.params.codec || !index.same_quantisers(first) {
                return Err("the parts do not share their quantisers".into());
            }
            if map.len() != index.len() {
                return Err(format!(
                    "a part has {} rows but a map of {}",
                    index.len(),
                    map.len()
                ));
            }
        }
        let nlist = first.nlist();
        let code_bytes = first.params.codec.code_bytes(first.dim);
        let mut offsets = vec![0u32; nlist + 1];
        let mut out_rows = Vec::with_capacity(rows);
        let mut codes = Vec::with_capacity(rows * code_bytes);
        let mut given = vec![false; rows];
        let mut weighted_error = Some(0f64);
        for l in 0..nlist {
            for (index, map) in parts {
                let (from, to) = (index.offsets[l] as usize, index.offsets[l + 1] as usize);
                let list_codes = &index.codes.get()[index.list_code_range(l)];
                for (i, &row) in index.rows[from..to].iter().enumerate() {
                    let new = map[row as usize];
                    if new == u32::MAX {
                        continue;
                    }
                    match given.get_mut(new as usize) {
                        Some(seen @ false) => *seen = true,
                        _ => return Err(format!("row {new} given twice or out of 0..{rows}")),
                    }
                    out_rows.push(new);
                    codes.extend_from_slice(&list_codes[i * code_bytes..(i + 1) * code_bytes]);
                }
            }
            offsets[l + 1] = out_rows.len() as u32;
        }
        if out_rows.len() != rows {
            return Err(format!("{} of {rows} rows given", out_rows.len()));
        }
        for (index, map) in parts {
            let kept = map.iter().filter(|&&r| r != u32::MAX).count() as f64;
            weighted_error = match (weighted_error, index.fit.rows_error) {
                (Some(sum), Some(e)) => Some(sum + e as f64 * kept),
                _ => None,
            };
        }
        Ok(IvfIndex {
            params: first.params,
            dim: first.dim,
            metric: first.metric,
            centroids: first.centroids.clone(),
            offsets,
            rows: out_rows,
            blocks: Vec::new(),
            codes: Codes::Owned(codes),
            residuals: first.residuals.clone(),
            coarse: first.coarse.clone(),
            fit: IvfFit {
                rows_error: weighted_error
                    .filter(|_| rows > 0)
                    .map(|sum| (sum / rows as f64) as f32),
                trained_error: first.fit.trained_error,
                trained_rows: first.fit.trained_rows,
            },
            sq8_norms: OnceLock::new(),
            quantisers_id: OnceLock::new(),
        })
    }

    /// Dimension of the rows.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric the index was built for.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Rows filed.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no rows are filed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of lists.
    pub fn nlist(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Rows per list.
    pub fn list_sizes(&self) -> Vec<usize> {
        self.offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .collect()
    }

    /// Bytes of the compressed codes alone (the per-vector cost of the codec).
    pub fn code_bytes(&self) -> usize {
        self.codes.get().len()
    }

    /// Whether the codes are read from the index file (memory-mapped or paged into a
    /// list cache) rather than held in RAM by the index.
    pub fn codes_on_disk(&self) -> bool {
        matches!(self.codes, Codes::Shared { .. } | Codes::Paged { .. })
    }

    /// The cache a paged index reads its lists into (`None`: codes in RAM or mapped).
    pub fn list_cache(&self) -> Option<&Arc<ListCache>> {
        match &self.codes {
            Codes::Paged { paged, .. } => Some(paged.cache()),
            _ => None,
        }
    }

    /// List `l`'s codes. `None` when a paged list could not be read (counted in the
    /// cache's `read_errors`; the search goes on without that list).
    fn list_codes(&self, l: usize) -> Option<ListCodes<'_>> {
        let range = self.list_code_range(l);
        match &self.codes {
            Codes::Paged { paged, .. } if !range.is_empty() => {
                paged.list(l, range).ok().map(ListCodes::Cached)
            }
            _ => Some(ListCodes::Borrowed(&self.codes.get()[range])),
        }
    }

    /// Asks the OS to start reading the codes of `lists` (a no-op for codes in RAM), so a
    /// search over lists on disk overlaps their reads instead of faulting page by page.
    fn prefetch(&self, lists: &[Neighbor]) {
        match &self.codes {
            Codes::Owned(_) => {}
            Codes::Shared { .. } => {
                let codes = self.codes.get();
                for list in lists {
                    advise_will_need(&codes[self.list_code_range(list.key as usize)]);
                }
            }
            Codes::Paged { paged, .. } => {
                for list in lists {
                    let l = list.key as usize;
                    paged.prefetch(l, self.list_code_range(l));
                }
            }
        }
    }

    /// The `nprobe` lists nearest to `query`, nearest first.
    fn probe(&self, query: &[f32], nprobe: usize) -> Vec<Neighbor> {
        let nprobe = nprobe.min(self.nlist());
        let view = VectorView {
            data: &self.centroids,
            dim: self.dim,
            metric: Metric::L2,
        };
        if let Some(graph) = &self.coarse {
            let ef = (2 * nprobe).max(64);
            return graph.search(
                view,
                query,
                nprobe,
                None,
                &SearchParams {
                    ef: Some(ef),
                    nprobe: None,
                    ..Default::default()
                },
            );
        }
        let mut top = TopK::new(nprobe);
        paradox_kernels::scan_topk(query, &self.centroids, true, 0, &mut top);
        top.into_sorted_vec()
    }

    /// [`Self::probe`] for each of `queries` (`dim` values each). Without a coarse graph,
    /// the centroids are ranked for all the queries at once by the blocked many-to-many
    /// kernel: each centroid block is read once per query block instead of once per
    /// query, which for 1,024 centroids of 384 dimensions is a 1.5 MB stream per query.
    fn probe_many(&self, queries: &[f32], nprobe: usize) -> Vec<Vec<Neighbor>> {
        let dim = self.dim.max(1);
        if self.coarse.is_some() {
            return queries
                .chunks_exact(dim)
                .map(|query| self.probe(query, nprobe))
                .collect();
        }
        let nprobe = nprobe.min(self.nlist());
        let mut tops: Vec<TopK> = (0..queries.len() / dim)
            .map(|_| TopK::new(nprobe))
            .collect();
        paradox_kernels::batch_topk(queries, &self.centroids, dim, true, 0, &mut tops);
        tops.into_iter().map(TopK::into_sorted_vec).collect()
    }

    /// Scores the probed lists with codes (or exactly for `Flat`) into `top`
    /// (`reranked`: see `QueryScan::new`).
    fn scan_lists(
        &self,
        vectors: VectorView<'_>,
        query: &[f32],
        lists: &[Neighbor],
        filter: Option<RowFilter<'_>>,
        reranked: bool,
        top: &mut TopK,
    ) {
        let allowed = |row: u32| filter.is_none_or(|f| f(row));
        let mut scan = QueryScan::new(self, query, reranked);
        for list in lists {
            let l = list.key as usize;
            if let Some(codes) = self.list_codes(l) {
                scan.list(self, vectors, l, &codes, &allowed, 0, top);
            }
        }
    }

    /// Makes now what the first search would otherwise make on its own time: the code
    /// norms of SQ8 under L2 with the codes in RAM (one pass over the codes, on the
    /// calling thread). A no-op for every other index.
    pub fn prepare_search(&self) {
        let _ = self.sq8_norms();
        let _ = self.quantisers_id();
    }

    /// SQ8 under L2 with the codes held in RAM: the code norms (made on first use, one
    /// pass over the codes), so a list is scored through the batched kernel. `None`
    /// otherwise: inner products need no norms, and for codes on disk the pass would read
    /// every list.
    fn sq8_norms(&self) -> Option<&[f32]> {
        let (Residuals::Sq8(sq), Codes::Owned(codes), Metric::L2) =
            (&self.residuals, &self.codes, self.metric)
        else {
            return None;
        };
        // Serial: a parallel pass inside `get_or_init` could, while it waits for a stolen
        // chunk, run another search of this index on the same thread, which would then wait
        // on the cell it is filling.
        let dim = self.dim.max(1);
        let norms = self
            .sq8_norms
            .get_or_init(|| codes.chunks_exact(dim).map(|c| sq.code_norm(c)).collect());
        Some(norms)
    }

    fn list_rows(&self, list: usize) -> &[u32] {
        &self.rows[self.offsets[list] as usize..self.offsets[list + 1] as usize]
    }
}

/// OPQ: alternation rounds and k-means steps per round while learning the rotation.
const OPQ_ROUNDS: usize = 8;
const OPQ_PQ_ITERATIONS: usize = 4;

/// Offers `top` each of `candidates` (keys: `key_base` + a row of `vectors`) with its
/// exact distance to `query`. The rows are scattered, so they are scored by the gather
/// kernel, which loads rows ahead of the ones it is scoring: a re-rank reads `k × rerank`
/// rows that are mostly out of the CPU caches.
fn rescore(
    metric: Metric,
    vectors: VectorView<'_>,
    query: &[f32],
    key_base: u64,
    candidates: &[Neighbor],
    top: &mut TopK,
) {
    let rows: Vec<u32> = candidates
        .iter()
        .map(|c| (c.key - key_base) as u32)
        .collect();
    let mut distances = vec![0f32; rows.len()];
    metric.distances_gather(query, vectors.data, &rows, &mut distances);
    for (candidate, distance) in candidates.iter().zip(distances) {
        top.push(candidate.key, distance);
    }
}

/// `nlist + 1` prefix counts of 32-row blocks for lists with the given row offsets.
fn block_prefix(offsets: &[u32]) -> Vec<u32> {
    let mut blocks = Vec::with_capacity(offsets.len());
    blocks.push(0u32);
    for w in offsets.windows(2) {
        let last = *blocks.last().expect("starts with 0");
        blocks.push(last + pq4::blocks_for((w[1] - w[0]) as usize) as u32);
    }
    blocks
}

/// Every list's rows encoded with `pq` and packed into blocks, list by list.
fn pq4_codes(
    pq: &Pq4Quantizer,
    offsets: &[u32],
    blocks: &[u32],
    rows: &[u32],
    dim: usize,
    residual_of: &(dyn Fn(u32, &mut [f32]) + Sync),
) -> Vec<u8> {
    let m = pq.m();
    let block_bytes = pq4::block_bytes(m);
    let mut codes = vec![0u8; *blocks.last().unwrap_or(&0) as usize * block_bytes];
    // Blocks never straddle lists: cut the output at list boundaries, encode in parallel.
    let mut parts: Vec<(&[u32], &mut [u8])> = Vec::with_capacity(offsets.len());
    let mut rest = codes.as_mut_slice();
    for (l, w) in offsets.windows(2).enumerate() {
        let (part, tail) = rest.split_at_mut((blocks[l + 1] - blocks[l]) as usize * block_bytes);
        parts.push((&rows[w[0] as usize..w[1] as usize], part));
        rest = tail;
    }
    parts.into_par_iter().for_each(|(list_rows, out)| {
        let mut residual = vec![0f32; dim];
        let mut encoded = vec![0u8; m * paradox_kernels::PQ4_BLOCK];
        for (chunk, block) in list_rows
            .chunks(paradox_kernels::PQ4_BLOCK)
            .zip(out.chunks_exact_mut(block_bytes))
        {
            for (&row, code) in chunk.iter().zip(encoded.chunks_exact_mut(m)) {
                residual_of(row, &mut residual);
                pq.encode(&residual, code);
            }
            let refs: Vec<&[u8]> = encoded.chunks_exact(m).take(chunk.len()).collect();
            pq4::pack_block(&refs, m, block);
        }
    });
    codes
}

/// A PQ training sample of at least 256 rows: a smaller one is repeated (its codes are
/// then exact up to duplicates); an empty one is zeros.
fn padded_sample(sample: Vec<f32>, dim: usize) -> Vec<f32> {
    if sample.is_empty() {
        return vec![0.0; PQ_CODEWORDS * dim];
    }
    let mut padded = sample.clone();
    while padded.len() < PQ_CODEWORDS * dim {
        padded.extend_from_slice(&sample);
    }
    padded
}

/// Residuals of up to `max_rows` rows spread evenly over the segment.
fn residual_sample(
    n: usize,
    dim: usize,
    max_rows: usize,
    seed: u64,
    residual_of: &(dyn Fn(u32, &mut [f32]) + Sync),
) -> Vec<f32> {
    let take = n.min(max_rows);
    let mut rng = kmeans::SplitMix::new(seed ^ 0xA5A5);
    let mut out = vec![0f32; take * dim];
    // A stride with a random start keeps the sample deterministic and spread out.
    let stride = n.checked_div(take).unwrap_or(1).max(1);
    let start = if stride > 1 { rng.below(stride) } else { 0 };
    for (i, chunk) in out.chunks_exact_mut(dim.max(1)).enumerate() {
        residual_of(((start + i * stride) % n.max(1)) as u32, chunk);
    }
    out
}

/// Row `row`'s residual from centroid `list`, into `out`.
fn residual(vectors: VectorView<'_>, centroids: &[f32], list: u32, row: u32, out: &mut [f32]) {
    let dim = vectors.dim;
    let c = &centroids[list as usize * dim..(list as usize + 1) * dim];
    for ((o, &x), &m) in out.iter_mut().zip(vectors.row(row as usize)).zip(c) {
        *o = x - m;
    }
}

fn coarse_graph(centroids: &[f32], dim: usize) -> HnswIndex {
    HnswIndex::build(
        VectorView {
            data: centroids,
            dim,
            metric: Metric::L2,
        },
        HnswParams {
            m: 32,
            ef_construction: 200,
            ..Default::default()
        },
    )
}

impl VectorIndex for IvfIndex {
    fn kind(&self) -> &'static str {
        "ivf"
    }

    fn search(
        &self,
        vectors: VectorView<'_>,
        query: &[f32],
        k: usize,
        filter: Option<RowFilter<'_>>,
        params: &SearchParams,
    ) -> Vec<Neighbor> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        let lists = self.probe(query, params.nprobe.unwrap_or(self.params.nprobe));
        self.prefetch(&lists);
        let exact = matches!(self.residuals, Residuals::Flat);
        let rerank = params.rerank.unwrap_or(self.params.rerank);
        if exact || rerank == 0 {
            let mut top = TopK::new(k);
            self.scan_lists(vectors, query, &lists, filter, false, &mut top);
            return top.into_sorted_vec();
        }
        let mut pool = TopK::new(k.saturating_mul(rerank));
        self.scan_lists(vectors, query, &lists, filter, true, &mut pool);
        let candidates = pool.into_sorted_vec();
        if self.codes_on_disk() {
            // The vectors are likely on disk too: ask for every candidate's page at once,
            // so their reads overlap, and so a fault does not read around the row (on a
            // miss the kernel reads up to `read_ahead_kb` around a faulting page; 8 MiB on
            // some disks, for a 512-byte row).
            for candidate in &candidates {
                advise_will_need(as_bytes(vectors.row(candidate.key as usize)));
            }
        }
        let mut top = TopK::new(k);
        rescore(self.metric, vectors, query, 0, &candidates, &mut top);
        top.into_sorted_vec()
    }

    fn memory_bytes(&self) -> usize {
        let quantiser = match &self.residuals {
            Residuals::Flat => 0,
            Residuals::Pq(pq) => pq.codebooks().len() * 4,
            Residuals::Sq8(_) => self.dim * 8,
            Residuals::OpqPq {
                pq,
                rotated_centroids,
                ..
            } => {
                pq.codebooks().len() * 4 * 2 + self.dim * self.dim * 4 + rotated_centroids.len() * 4
            }
            Residuals::Pq4(pq) => pq.codebooks().len() * 4 + self.blocks.len() * 4,
        };
        self.centroids.len() * 4
            + self.offsets.len() * 4
            + self.rows.len() * 4
            + if self.codes_on_disk() {
                0
            } else {
                self.code_bytes()
            }
            + quantiser
            + self.sq8_norms.get().map_or(0, |n| n.len() * 4)
            + self.coarse.as_ref().map_or(0, |g| g.memory_bytes())
    }
}

#[cfg(test)]
mod tests;
