//! Compressed copies of a segment's vectors for graph traversal, and search that traverses
//! them and re-ranks exactly.
//!
//! An HNSW search computes a few thousand distances to rows in random order, so its cost is
//! mostly cache misses on those rows. [`EncodedVectors`] holds a second copy of the rows in
//! a smaller code ([`VectorEncoding`]: SQ8 is a quarter of `f32`, plus 4 bytes per row
//! under L2; f16/bf16 a half);
//! [`search_encoded`] walks the graph with distances to the codes, then recomputes the exact
//! `f32` distance of the best few candidates from the full rows (which may stay memory
//! mapped on disk, since only `k · rerank` of them are read per query).
//!
//! # Byte layout ([`EncodedVectors::to_bytes`])
//!
//! Little-endian; the caller wraps it in a checksummed container, as for the HNSW graph.
//!
//! ```text
//! u32 format (1) | u8 encoding (0 f32, 1 f16, 2 bf16, 3 sq8) | u8 metric (0 l2, 1 dot,
//! 2 cosine) | u16 zero | u64 dim | u64 rows
//! sq8 only: dim × f32 minimums | dim × f32 scales
//! rows × row codes: dim × f32 | dim × u16 (f16 or bf16 bits) | dim × u8 (sq8), and for
//!   sq8 under l2 an f32 `Σ (scale_i · c_i)²` after each row's codes
//! ```
//!
//! Decoding checks the header, every size (with overflow checks) and the quantiser, so a
//! damaged buffer is an error, never a panic.

use crate::hnsw::NodeDistance;
use crate::{HnswIndex, Metric, Neighbor, RowFilter, SharedBytes, TopK, VectorView};
use paradox_kernels::quant::{self, encode_bf16, encode_f16};
use paradox_kernels::{kernel_table, Sq8Quantizer, Sq8Query};

const FORMAT: u32 = 1;
const HEADER_BYTES: usize = 24;

/// How the traversal copy of the vectors is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorEncoding {
    /// Plain `f32` (4 bytes per dimension): a copy of the rows, exact distances.
    F32,
    /// IEEE half precision (2 bytes per dimension, relative error ≤ 2⁻¹¹, range ±65504).
    F16,
    /// bfloat16 (2 bytes per dimension, relative error ≤ 2⁻⁸, full `f32` range).
    Bf16,
    /// 8-bit scalar quantisation with a per-dimension range fitted to the rows (1 byte per
    /// dimension); see [`Sq8Quantizer`].
    Sq8,
}

impl VectorEncoding {
    /// Every encoding, widest first.
    pub const ALL: [VectorEncoding; 4] = [
        VectorEncoding::F32,
        VectorEncoding::F16,
        VectorEncoding::Bf16,
        VectorEncoding::Sq8,
    ];

    /// Stable lowercase name: `f32`, `f16`, `bf16`, `sq8`.
    pub fn as_str(self) -> &'static str {
        match self {
            VectorEncoding::F32 => "f32",
            VectorEncoding::F16 => "f16",
            VectorEncoding::Bf16 => "bf16",
            VectorEncoding::Sq8 => "sq8",
        }
    }

    /// Parses the names of [`VectorEncoding::as_str`] (case-insensitive), plus `float32`,
    /// `float16`, `half`, `bfloat16`, `int8` and `uint8` for SQ8.
    pub fn parse(name: &str) -> Option<VectorEncoding> {
        match name.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Some(VectorEncoding::F32),
            "f16" | "float16" | "half" => Some(VectorEncoding::F16),
            "bf16" | "bfloat16" => Some(VectorEncoding::Bf16),
            "sq8" | "int8" | "uint8" => Some(VectorEncoding::Sq8),
            _ => None,
        }
    }

    /// Bytes one dimension takes.
    pub fn bytes_per_dimension(self) -> usize {
        match self {
            VectorEncoding::F32 => 4,
            VectorEncoding::F16 | VectorEncoding::Bf16 => 2,
            VectorEncoding::Sq8 => 1,
        }
    }

    fn tag(self) -> u8 {
        match self {
            VectorEncoding::F32 => 0,
            VectorEncoding::F16 => 1,
            VectorEncoding::Bf16 => 2,
            VectorEncoding::Sq8 => 3,
        }
    }
}

impl std::fmt::Display for VectorEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The codes, by encoding. Which variant is present *is* the encoding, so the two cannot
/// disagree; `f32` rows keep their own type so the `f32` kernels read them aligned.
#[derive(Debug, Clone, PartialEq)]
enum Codes {
    F32(Vec<f32>),
    F16(CodeBytes),
    Bf16(CodeBytes),
    Sq8(CodeBytes, Sq8Quantizer),
}

/// Code bytes: held, or read in place from shared bytes (a memory-mapped index file).
#[derive(Clone)]
enum CodeBytes {
    Held(Vec<u8>),
    /// `len` bytes at `start` of `bytes` (checked when decoded).
    Shared {
        bytes: SharedBytes,
        start: usize,
        len: usize,
    },
}

impl CodeBytes {
    #[inline]
    fn get(&self) -> &[u8] {
        match self {
            CodeBytes::Held(codes) => codes,
            CodeBytes::Shared { bytes, start, len } => &(**bytes).as_ref()[*start..*start + *len],
        }
    }

    /// The codes as a buffer of their own, copied out of shared bytes first.
    fn held_mut(&mut self) -> &mut Vec<u8> {
        if let CodeBytes::Shared { .. } = self {
            *self = CodeBytes::Held(self.get().to_vec());
        }
        match self {
            CodeBytes::Held(codes) => codes,
            CodeBytes::Shared { .. } => unreachable!("made held above"),
        }
    }

    /// Heap bytes held (none in place: those are the file's pages).
    fn held_bytes(&self) -> usize {
        match self {
            CodeBytes::Held(codes) => codes.capacity(),
            CodeBytes::Shared { .. } => 0,
        }
    }
}

impl std::ops::Deref for CodeBytes {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.get()
    }
}

impl PartialEq for CodeBytes {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for CodeBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeBytes")
            .field("len", &self.get().len())
            .field("shared", &matches!(self, CodeBytes::Shared { .. }))
            .finish()
    }
}

/// The rows of one segment in a compact code, row `i` at code row `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedVectors {
    dim: usize,
    metric: Metric,
    len: usize,
    codes: Codes,
}

/// Why bytes did not decode as [`EncodedVectors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedDecodeError(pub String);

impl std::fmt::Display for EncodedDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid encoded vector bytes: {}", self.0)
    }
}

impl std::error::Error for EncodedDecodeError {}

impl EncodedVectors {
    /// Encodes every row of `view` (SQ8 first fits its quantiser to all of them).
    pub fn encode(view: VectorView<'_>, encoding: VectorEncoding) -> EncodedVectors {
        let (dim, rows) = (view.dim, view.len());
        let data = &view.data[..rows * dim];
        let bytes = |encode: &dyn Fn(&[f32], &mut [u8]), width: usize| {
            let mut out = vec![0u8; rows * dim * width];
            for (row, code) in data
                .chunks_exact(dim.max(1))
                .zip(out.chunks_exact_mut((dim * width).max(1)))
            {
                encode(row, code);
            }
            out
        };
        let codes = match encoding {
            VectorEncoding::F32 => Codes::F32(data.to_vec()),
            VectorEncoding::F16 => Codes::F16(CodeBytes::Held(bytes(&encode_f16, 2))),
            VectorEncoding::Bf16 => Codes::Bf16(CodeBytes::Held(bytes(&encode_bf16, 2))),
            VectorEncoding::Sq8 => {
                let sq8 = Sq8Quantizer::fit(data, dim);
                let stride = dim + sq8_norm_bytes(view.metric);
                let mut codes = vec![0u8; rows * stride];
                for (row, code) in data
                    .chunks_exact(dim.max(1))
                    .zip(codes.chunks_exact_mut(stride.max(1)))
                {
                    encode_sq8_row(&sq8, view.metric, row, code);
                }
                Codes::Sq8(CodeBytes::Held(codes), sq8)
            }
        };
        EncodedVectors {
            dim,
            metric: view.metric,
            len: rows,
            codes,
        }
    }

    /// Appends one row (prepared for the metric like the others). SQ8 keeps its fitted
    /// ranges: values outside them are clipped, so refit (re-encode) once the data drifts.
    pub fn push(&mut self, row: &[f32]) {
        assert_eq!(
            row.len(),
            self.dim,
            "encoded vectors have {} dimensions, the row {}",
            self.dim,
            row.len()
        );
        let dim = self.dim;
        let grow = |codes: &mut Vec<u8>, width: usize, encode: &dyn Fn(&[f32], &mut [u8])| {
            let start = codes.len();
            codes.resize(start + dim * width, 0);
            encode(row, &mut codes[start..]);
        };
        match &mut self.codes {
            Codes::F32(rows) => rows.extend_from_slice(row),
            Codes::F16(codes) => grow(codes.held_mut(), 2, &encode_f16),
            Codes::Bf16(codes) => grow(codes.held_mut(), 2, &encode_bf16),
            Codes::Sq8(codes, sq8) => {
                let codes = codes.held_mut();
                let start = codes.len();
                codes.resize(start + dim + sq8_norm_bytes(self.metric), 0);
                encode_sq8_row(sq8, self.metric, row, &mut codes[start..]);
            }
        }
        self.len += 1;
    }

    /// The code.
    pub fn encoding(&self) -> VectorEncoding {
        match self.codes {
            Codes::F32(_) => VectorEncoding::F32,
            Codes::F16(_) => VectorEncoding::F16,
            Codes::Bf16(_) => VectorEncoding::Bf16,
            Codes::Sq8(..) => VectorEncoding::Sq8,
        }
    }

    /// Dimensions per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric the rows were prepared for.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SQ8 quantiser, for SQ8 codes.
    pub fn sq8(&self) -> Option<&Sq8Quantizer> {
        match &self.codes {
            Codes::Sq8(_, sq8) => Some(sq8),
            _ => None,
        }
    }

    /// Bytes held: the codes plus the quantiser's per-dimension ranges.
    pub fn memory_bytes(&self) -> usize {
        let codes = match &self.codes {
            Codes::F32(rows) => rows.capacity() * 4,
            Codes::F16(codes) | Codes::Bf16(codes) => codes.held_bytes(),
            // Minimums, scales and their inverses.
            Codes::Sq8(codes, sq8) => codes.held_bytes() + 3 * 4 * sq8.dim(),
        };
        std::mem::size_of::<Self>() + codes
    }

    /// Distances from `query` to the rows under the metric (lower is closer), for
    /// [`HnswIndex::search_with`]. `query` must be prepared like the rows (unit length for
    /// cosine). Folding the query (SQ8) costs one pass over `dim`; distances then read one
    /// code row each.
    pub fn query_distance<'a>(&'a self, query: &'a [f32]) -> EncodedDistance<'a> {
        assert_eq!(
            query.len(),
            self.dim,
            "encoded vectors have {} dimensions, the query {}",
            self.dim,
            query.len()
        );
        let negate = self.metric != Metric::L2;
        let l2 = !negate;
        let table = quant::quant_table();
        let folded = match &self.codes {
            Codes::F32(rows) => Folded::F32 {
                rows,
                kernel: if l2 {
                    kernel_table().l2_squared
                } else {
                    kernel_table().dot
                },
            },
            Codes::F16(codes) => Folded::Half {
                codes,
                kernel: if l2 {
                    table.f16_l2_squared
                } else {
                    table.f16_dot
                },
            },
            Codes::Bf16(codes) => Folded::Half {
                codes,
                kernel: if l2 {
                    table.bf16_l2_squared
                } else {
                    table.bf16_dot
                },
            },
            Codes::Sq8(codes, sq8) => Folded::Sq8 {
                codes,
                query: sq8.query(query, self.metric),
            },
        };
        EncodedDistance {
            query,
            negate,
            row_bytes: self.row_bytes(),
            folded,
        }
    }

    /// Bytes of one code row.
    fn row_bytes(&self) -> usize {
        row_bytes(self.encoding(), self.metric, self.dim)
    }
}

/// Bytes of one code row: the codes, plus the SQ8 row norm under L2.
fn row_bytes(encoding: VectorEncoding, metric: Metric, dim: usize) -> usize {
    match encoding {
        VectorEncoding::Sq8 => dim + sq8_norm_bytes(metric),
        _ => dim * encoding.bytes_per_dimension(),
    }
}

/// SQ8 rows under L2 carry `Σ (scale_i · c_i)²` (an `f32`) so that the distance is a single
/// inner product over the codes ([`Sq8Query::fast_distance`]).
fn sq8_norm_bytes(metric: Metric) -> usize {
    if metric == Metric::L2 {
        4
    } else {
        0
    }
}

/// Writes one SQ8 code row (`out.len() == dim + sq8_norm_bytes(metric)`).
fn encode_sq8_row(sq8: &Sq8Quantizer, metric: Metric, row: &[f32], out: &mut [u8]) {
    let (code, norm) = out.split_at_mut(row.len());
    sq8.encode(row, code);
    if metric == Metric::L2 {
        norm.copy_from_slice(&sq8.code_norm(code).to_le_bytes());
    }
}

/// The distance from one query to any encoded row; see [`EncodedVectors::query_distance`].
#[derive(Debug)]
pub struct EncodedDistance<'a> {
    query: &'a [f32],
    /// Dot and cosine kernels return the inner product; the distance is its negation.
    negate: bool,
    row_bytes: usize,
    folded: Folded<'a>,
}

#[derive(Debug)]
enum Folded<'a> {
    F32 {
        rows: &'a [f32],
        kernel: fn(&[f32], &[f32]) -> f32,
    },
    Half {
        codes: &'a [u8],
        kernel: fn(&[f32], &[u8]) -> f32,
    },
    Sq8 {
        codes: &'a [u8],
        query: Sq8Query<'a>,
    },
}

impl EncodedDistance<'_> {
    fn signed(&self, raw: f32) -> f32 {
        if self.negate {
            -raw
        } else {
            raw
        }
    }

    /// Start of `node`'s code row, if the row exists.
    fn row_start(&self, node: u32) -> Option<*const u8> {
        let (start, len) = match self.folded {
            Folded::F32 { rows, .. } => (rows.as_ptr().cast::<u8>(), rows.len() * 4),
            Folded::Half { codes, .. } | Folded::Sq8 { codes, .. } => (codes.as_ptr(), codes.len()),
        };
        let offset = node as usize * self.row_bytes;
        // `wrapping_add`: the pointer is only formed, and used only when in bounds.
        (offset + self.row_bytes <= len).then(|| start.wrapping_add(offset))
    }
}

impl EncodedDistance<'_> {
    /// The distance to SQ8 code row `node`: its codes, then (under L2) its code norm.
    #[inline]
    fn sq8_distance(&self, codes: &[u8], query: &Sq8Query, node: u32) -> f32 {
        let (n, bytes) = (node as usize, self.row_bytes);
        let (code, norm) = codes[n * bytes..(n + 1) * bytes].split_at(self.query.len());
        query.fast_distance(code, norm.try_into().map_or(0.0, f32::from_le_bytes))
    }
}

/// Cache lines prefetched per code row at most (512 bytes: a full SQ8 row up to 512
/// dimensions, an f16 row up to 256).
const PREFETCH_LINES: usize = 8;

impl NodeDistance for EncodedDistance<'_> {
    #[inline]
    fn distance(&self, node: u32) -> f32 {
        let (n, bytes) = (node as usize, self.row_bytes);
        match &self.folded {
            Folded::F32 { rows, kernel } => {
                let dim = self.query.len();
                self.signed(kernel(self.query, &rows[n * dim..(n + 1) * dim]))
            }
            Folded::Half { codes, kernel } => {
                self.signed(kernel(self.query, &codes[n * bytes..(n + 1) * bytes]))
            }
            // The folded query already returns the metric's distance.
            Folded::Sq8 { codes, query } => self.sq8_distance(codes, query, node),
        }
    }

    fn distances(&self, nodes: &[u32], out: &mut [f32]) {
        // The SQ8 case, the common one, with the encoding matched once for all nodes.
        if let Folded::Sq8 { codes, query } = &self.folded {
            query.fast_distances(codes, self.row_bytes, nodes, out);
        } else {
            for (o, &n) in out.iter_mut().zip(nodes) {
                *o = self.distance(n);
            }
        }
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(start) = self.row_start(node) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            for line in 0..self.row_bytes.div_ceil(64).min(PREFETCH_LINES) {
                // SAFETY: prefetch is a hint that never faults; the address is inside the
                // code row (checked by `row_start`).
                unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(64 * line).cast::<i8>()) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = self.row_start(node);
    }
}

impl EncodedVectors {
    /// Encodes to the layout in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.memory_bytes());
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.push(self.encoding().tag());
        out.push(metric_tag(self.metric));
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(self.dim as u64).to_le_bytes());
        out.extend_from_slice(&(self.len as u64).to_le_bytes());
        match &self.codes {
            Codes::F32(rows) => rows
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            Codes::F16(codes) | Codes::Bf16(codes) => out.extend_from_slice(codes),
            Codes::Sq8(codes, sq8) => {
                for v in sq8.mins().iter().chain(sq8.scales()) {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(codes);
            }
        }
        out
    }

    /// Decodes bytes written by [`EncodedVectors::to_bytes`], checking every field.
    pub fn from_bytes(bytes: &[u8]) -> Result<EncodedVectors, EncodedDecodeError> {
        Self::decode(bytes, None)
    }

    /// Like [`EncodedVectors::from_bytes`], but f16, bf16 and SQ8 codes are read in place
    /// from `shared` (typically a memory-mapped index file section) instead of copied;
    /// only [`EncodedVectors::push`] copies them out. `f32` rows are copied.
    pub fn from_shared(shared: SharedBytes) -> Result<EncodedVectors, EncodedDecodeError> {
        Self::decode((*shared).as_ref(), Some(shared.clone()))
    }

    /// Whether the codes are read in place from shared bytes.
    pub fn codes_in_place(&self) -> bool {
        matches!(
            &self.codes,
            Codes::F16(CodeBytes::Shared { .. })
                | Codes::Bf16(CodeBytes::Shared { .. })
                | Codes::Sq8(CodeBytes::Shared { .. }, _)
        )
    }

    fn decode(
        bytes: &[u8],
        shared: Option<SharedBytes>,
    ) -> Result<EncodedVectors, EncodedDecodeError> {
        let fail = |m: String| Err(EncodedDecodeError(m));
        if bytes.len() < HEADER_BYTES {
            return fail(format!(
                "{} bytes, shorter than the {HEADER_BYTES}-byte header",
                bytes.len()
            ));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let format = u32::from_le_bytes(bytes[..4].try_into().expect("4"));
        if format != FORMAT {
            return fail(format!("format {format}, this build reads {FORMAT}"));
        }
        let Some(encoding) = VectorEncoding::ALL
            .into_iter()
            .find(|e| e.tag() == bytes[4])
        else {
            return fail(format!("unknown encoding tag {}", bytes[4]));
        };
        let metric = match bytes[5] {
            0 => Metric::L2,
            1 => Metric::Dot,
            2 => Metric::Cosine,
            tag => return fail(format!("unknown metric tag {tag}")),
        };
        if bytes[6..8] != [0, 0] {
            return fail("reserved header bytes are not zero".into());
        }
        let (dim, len) = (u64_at(8), u64_at(16));
        let width = encoding.bytes_per_dimension() as u64;
        let (quantiser, row) = if encoding == VectorEncoding::Sq8 {
            let norm = sq8_norm_bytes(metric) as u64;
            (dim.checked_mul(8), dim.checked_add(norm))
        } else {
            (Some(0), dim.checked_mul(width))
        };
        let expected = row
            .and_then(|r| r.checked_mul(len))
            .zip(quantiser)
            .and_then(|(codes, q)| codes.checked_add(q)?.checked_add(HEADER_BYTES as u64));
        if expected != Some(bytes.len() as u64) {
            return fail(format!(
                "{encoding} codes of {len} rows × {dim} dimensions do not fit in {} bytes",
                bytes.len()
            ));
        }
        if dim == 0 && len > 0 {
            return fail(format!("{len} rows of zero dimensions"));
        }
        // Every size fits in the buffer, hence in `usize`.
        let (dim, len) = (dim as usize, len as usize);
        let body = &bytes[HEADER_BYTES..];
        let floats = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                .collect()
        };
        // The codes from byte `start` of `bytes` to the end: in place when shared.
        let code_bytes = |start: usize| match &shared {
            Some(shared) => CodeBytes::Shared {
                bytes: shared.clone(),
                start,
                len: bytes.len() - start,
            },
            None => CodeBytes::Held(bytes[start..].to_vec()),
        };
        let codes = match encoding {
            VectorEncoding::F32 => Codes::F32(floats(body)),
            VectorEncoding::F16 => Codes::F16(code_bytes(HEADER_BYTES)),
            VectorEncoding::Bf16 => Codes::Bf16(code_bytes(HEADER_BYTES)),
            VectorEncoding::Sq8 => {
                let ranges = &body[..8 * dim];
                let (mins, scales) = ranges.split_at(4 * dim);
                let sq8 = Sq8Quantizer::from_parts(floats(mins), floats(scales))
                    .map_err(EncodedDecodeError)?;
                Codes::Sq8(code_bytes(HEADER_BYTES + 8 * dim), sq8)
            }
        };
        Ok(EncodedVectors {
            dim,
            metric,
            len,
            codes,
        })
    }
}

fn metric_tag(metric: Metric) -> u8 {
    match metric {
        Metric::L2 => 0,
        Metric::Dot => 1,
        Metric::Cosine => 2,
    }
}

/// The `k` nearest rows that `accept` admits (every row when `None`): traverses `index` with distances to the
/// `encoded` codes, keeps the best `max(k · rerank, k)` candidates, recomputes their exact
/// distances from the `full` rows and returns the best `k` of those, closest first.
///
/// `ef` is the traversal beam (raised to the candidate count when smaller); `rerank` is
/// the oversampling factor (2 to 4 recovers the recall lost to SQ8 on typical data; see
/// the tests). `query` must be prepared like the rows (unit length for cosine). With
/// [`VectorEncoding::F32`] distances are already exact and nothing is re-ranked. Deleted
/// rows are never returned.
// One call per query from the engine's search loop; a parameter struct would only be
// unpacked again here.
#[allow(clippy::too_many_arguments)]
pub fn search_encoded(
    index: &HnswIndex,
    encoded: &EncodedVectors,
    full: VectorView<'_>,
    query: &[f32],
    k: usize,
    ef: usize,
    rerank: usize,
    accept: Option<RowFilter<'_>>,
) -> Vec<Neighbor> {
    assert!(
        encoded.dim == full.dim && encoded.len >= index.len() && full.len() >= index.len(),
        "search_encoded: graph of {} rows, codes of {} × {}, full rows {} × {}",
        index.len(),
        encoded.len,
        encoded.dim,
        full.len(),
        full.dim
    );
    if k == 0 {
        return Vec::new();
    }
    let pool = k.saturating_mul(rerank.max(1));
    let dist = encoded.query_distance(query);
    let mut candidates = match accept {
        None => index.search_all(&dist, ef.max(pool)),
        Some(accept) => index.search_with(&dist, ef.max(pool), &accept),
    };
    if encoded.encoding() == VectorEncoding::F32 {
        candidates.truncate(k);
        return candidates;
    }
    candidates.truncate(pool);
    // The exact rows are likely misses (or page faults, when memory-mapped) and
    // independent: the gather kernel reads four at a time and fetches the next ones ahead.
    let rows: Vec<u32> = candidates.iter().map(|c| c.key as u32).collect();
    let mut exact = vec![0f32; rows.len()];
    full.metric.distances_gather(
        query,
        &full.data[..full.len() * full.dim],
        &rows,
        &mut exact,
    );
    let mut top = TopK::new(k);
    for (&row, &distance) in rows.iter().zip(&exact) {
        top.push(row as u64, distance);
    }
    top.into_sorted_vec()
}
