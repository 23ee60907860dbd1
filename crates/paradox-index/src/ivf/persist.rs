//! Byte encoding of an IVF index (little-endian; the caller wraps it in a checksummed
//! container). Layout:
//!
//! ```text
//! u32 format (3) | u32 codec (0 flat, 1 pq, 2 sq8, 3 opq_pq, 4 pq4) | u32 metric (0 l2, 1 dot, 2 cosine)
//! u32 dim | u32 nlist | u32 nprobe | u32 rerank | u32 pq_m | u32 train_iterations
//! u32 max_points_per_centroid | u32 balanced | u64 seed | u64 n
//! nlist × dim f32 centroids
//! (nlist + 1) × u32 list offsets (0, ..., n)
//! n × u32 row numbers, list by list
//! n × code_bytes codes, list by list, zero-padded to a multiple of 4 (pq4: each list's
//! ⌈rows / 32⌉ blocks of m × 16 bytes, see `crate::pq4::pack_block`)
//! quantiser: pq → dim × 256 f32 codewords (m × 256 × dsub); sq8 → dim f32 mins, dim f32
//! scales; opq_pq → the pq codewords, then dim × dim f32 `Rᵀ` (row-major); pq4 → dim × 16
//! f32 codewords (m × 16 × dsub), then the f32 search gain (`Pq4Quantizer::gain`; not in
//! format 1, read as a gain of 1); flat → nothing
//! fit (from format 3; `IvfFit`): f32 rows_error | f32 trained_error (NaN = unknown) |
//! u64 trained_rows (u64::MAX = unknown)
//! ```
//!
//! Decoding checks every size, offset and row number, so a damaged buffer is an error,
//! never a panic later. The coarse HNSW graph (many lists only) is rebuilt on load.

use super::cache::PagedCodes;
use super::{
    coarse_graph, Codes, IvfCodec, IvfIndex, IvfParams, ListCache, Residuals, SharedBytes,
    COARSE_HNSW_MIN_LISTS,
};
use crate::bytes::{put_f32s, put_u32s, Reader};
use crate::opq::Rotation;
use crate::pq::{ProductQuantizer, PQ_CODEWORDS};
use crate::pq4::{self, Pq4Quantizer, PQ4_CODEWORDS};
use paradox_kernels::{Metric, Sq8Quantizer};
use std::sync::Arc;

/// Written by this build; formats 1 (no pq4 gain) and 2 (no fit) are still read.
const FORMAT: u32 = 3;
/// Bytes of the fit at the end of format 3.
const FIT_BYTES: usize = 16;

/// Why bytes did not decode as an IVF index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvfDecodeError(pub String);

impl std::fmt::Display for IvfDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid IVF index bytes: {}", self.0)
    }
}

impl std::error::Error for IvfDecodeError {}

fn metric_tag(metric: Metric) -> u32 {
    match metric {
        Metric::L2 => 0,
        Metric::Dot => 1,
        Metric::Cosine => 2,
    }
}

impl IvfIndex {
    /// Encodes the index.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.params;
        let (codec, pq_m) = match p.codec {
            IvfCodec::Flat => (0, 0),
            IvfCodec::Pq { m } => (1, m as u32),
            IvfCodec::Sq8 => (2, 0),
            IvfCodec::OpqPq { m } => (3, m as u32),
            IvfCodec::Pq4 { m } => (4, m as u32),
        };
        let mut out = Vec::with_capacity(
            96 + self.centroids.len() * 4 + self.rows.len() * 4 + self.code_bytes(),
        );
        put_u32s(
            &mut out,
            [
                FORMAT,
                codec,
                metric_tag(self.metric),
                self.dim as u32,
                self.nlist() as u32,
                p.nprobe as u32,
                p.rerank as u32,
                pq_m,
                p.train_iterations as u32,
                p.max_points_per_centroid as u32,
                p.balanced as u32,
            ],
        );
        out.extend_from_slice(&p.seed.to_le_bytes());
        out.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        put_f32s(&mut out, &self.centroids);
        put_u32s(&mut out, self.offsets.iter().copied());
        put_u32s(&mut out, self.rows.iter().copied());
        out.extend_from_slice(self.codes.get());
        out.resize(out.len() + (4 - self.code_bytes() % 4) % 4, 0);
        match &self.residuals {
            Residuals::Flat => {}
            Residuals::Pq(pq) => put_f32s(&mut out, pq.codebooks()),
            Residuals::Sq8(sq) => {
                put_f32s(&mut out, sq.mins());
                put_f32s(&mut out, sq.scales());
            }
            Residuals::OpqPq { rotation, pq, .. } => {
                put_f32s(&mut out, pq.codebooks());
                put_f32s(&mut out, rotation.transposed());
            }
            Residuals::Pq4(pq) => {
                put_f32s(&mut out, pq.codebooks());
                put_f32s(&mut out, &[pq.gain()]);
            }
        }
        let fit = self.fit;
        put_f32s(
            &mut out,
            &[
                fit.rows_error.unwrap_or(f32::NAN),
                fit.trained_error.unwrap_or(f32::NAN),
            ],
        );
        out.extend_from_slice(&fit.trained_rows.unwrap_or(u64::MAX).to_le_bytes());
        out
    }

    /// Decodes bytes written by [`IvfIndex::to_bytes`], checking every field; the codes
    /// are copied into RAM.
    pub fn from_bytes(bytes: &[u8]) -> Result<IvfIndex, IvfDecodeError> {
        decode(bytes, None).map_err(IvfDecodeError)
    }

    /// Like [`IvfIndex::from_bytes`], but the codes stay in `shared` (typically a
    /// memory-mapped index file) and are read from there by each search: opening costs no
    /// copy, and only the lists searches visit are paged in. Everything else (centroids,
    /// list offsets, row numbers, quantiser) is decoded into RAM.
    pub fn from_shared(shared: SharedBytes) -> Result<IvfIndex, IvfDecodeError> {
        decode((*shared).as_ref(), Some(shared.clone())).map_err(IvfDecodeError)
    }

    /// Like [`IvfIndex::from_shared`], but searches read the lists they visit from `file`
    /// into `cache` (see [`ListCache`]) instead of through the mapping: the codes kept
    /// take at most the cache's budget, shared with the other indexes using it. `file`
    /// must be the file `shared` was read from.
    /// `shared_offset` is where `shared` starts in `file` (the mapping itself is only
    /// read again to re-encode the index).
    pub fn from_file_paged(
        shared: SharedBytes,
        file: std::fs::File,
        shared_offset: u64,
        cache: Arc<ListCache>,
    ) -> Result<IvfIndex, IvfDecodeError> {
        let mut index = Self::from_shared(shared)?;
        let Codes::Shared { bytes, start, len } =
            std::mem::replace(&mut index.codes, Codes::Owned(Vec::new()))
        else {
            // `from_shared` always leaves the codes shared.
            return Err(IvfDecodeError("codes are not in the shared buffer".into()));
        };
        let paged = PagedCodes::new(file, shared_offset + start as u64, cache);
        index.codes = Codes::Paged {
            bytes,
            start,
            len,
            paged,
        };
        Ok(index)
    }
}

fn decode(bytes: &[u8], shared: Option<SharedBytes>) -> Result<IvfIndex, String> {
    let mut r = Reader::new(bytes);
    let format = r.u32("format")?;
    if !(1..=FORMAT).contains(&format) {
        return Err(format!("format {format}, this build reads 1 to {FORMAT}"));
    }
    let codec_tag = r.u32("codec")?;
    let metric = match r.u32("metric")? {
        0 => Metric::L2,
        1 => Metric::Dot,
        2 => Metric::Cosine,
        other => return Err(format!("unknown metric tag {other}")),
    };
    let dim = r.u32("dim")? as usize;
    let nlist = r.u32("nlist")? as usize;
    let nprobe = r.u32("nprobe")? as usize;
    let rerank = r.u32("rerank")? as usize;
    let pq_m = r.u32("pq_m")? as usize;
    let codec = match codec_tag {
        0 => IvfCodec::Flat,
        1 => IvfCodec::Pq { m: pq_m },
        2 => IvfCodec::Sq8,
        3 => IvfCodec::OpqPq { m: pq_m },
        4 => IvfCodec::Pq4 { m: pq_m },
        other => return Err(format!("unknown codec tag {other}")),
    };
    let params = IvfParams {
        nlist,
        nprobe,
        codec,
        rerank,
        train_iterations: r.u32("train_iterations")? as usize,
        max_points_per_centroid: r.u32("max_points_per_centroid")? as usize,
        balanced: r.u32("balanced")? != 0,
        seed: r.u64("seed")?,
    };
    if dim == 0 {
        return Err("dimension 0".into());
    }
    params.validate(dim)?;
    let n = r.len("n")?;
    if n >= u32::MAX as usize {
        return Err(format!("{n} rows exceed the u32 range"));
    }
    let code_bytes = codec.code_bytes(dim);
    let quantiser_values = match codec {
        IvfCodec::Flat => 0,
        IvfCodec::Pq { .. } => dim * PQ_CODEWORDS,
        IvfCodec::Sq8 => 2 * dim,
        IvfCodec::OpqPq { .. } => dim * PQ_CODEWORDS + dim * dim,
        IvfCodec::Pq4 { .. } => dim * PQ4_CODEWORDS + usize::from(format >= 2),
    };
    // The offsets come later; pq4's code size depends on them, so it is checked after
    // they are read (here: an upper bound that keeps the arithmetic in range).
    let codes_len = match codec {
        IvfCodec::Pq4 { m } => {
            let blocks = pq4_blocks_in(bytes, &r, nlist, dim)?;
            blocks
                .checked_mul(pq4::block_bytes(m))
                .ok_or("codes too large")?
        }
        _ => n.checked_mul(code_bytes).ok_or("codes too large")?,
    };
    let need = nlist
        .checked_mul(dim)
        .and_then(|c| c.checked_add(nlist + 1))
        .and_then(|x| x.checked_add(n))
        .and_then(|x| x.checked_add(quantiser_values))
        .and_then(|x| x.checked_mul(4))
        .and_then(|x| x.checked_add(codes_len + (4 - codes_len % 4) % 4))
        .and_then(|x| x.checked_add(if format >= 3 { FIT_BYTES } else { 0 }));
    if need != Some(r.remaining()) {
        return Err(format!(
            "body holds {} bytes, header implies {need:?}",
            r.remaining()
        ));
    }
    let centroids = r.f32s(nlist * dim, "centroids")?;
    let offsets = r.u32s(nlist + 1, "offsets")?;
    if offsets[0] != 0 || offsets[nlist] as usize != n || offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("list offsets are not an increasing cover of the rows".into());
    }
    let rows = r.u32s(n, "rows")?;
    if rows.iter().any(|&row| row as usize >= n) {
        return Err("a row number is out of range".into());
    }
    let blocks = match codec {
        IvfCodec::Pq4 { .. } => super::block_prefix(&offsets),
        _ => Vec::new(),
    };
    let codes_at = bytes.len() - r.remaining();
    let codes = r.take(codes_len, "codes")?;
    let codes = match shared {
        Some(bytes) => Codes::Shared {
            bytes,
            start: codes_at,
            len: codes_len,
        },
        None => Codes::Owned(codes.to_vec()),
    };
    r.take((4 - codes_len % 4) % 4, "padding")?;
    let residuals = match codec {
        IvfCodec::Flat => Residuals::Flat,
        IvfCodec::Pq { m } => Residuals::Pq(ProductQuantizer::from_parts(
            dim,
            m,
            r.f32s(dim * PQ_CODEWORDS, "codebooks")?,
        )?),
        IvfCodec::Sq8 => {
            let mins = r.f32s(dim, "sq8 mins")?;
            let scales = r.f32s(dim, "sq8 scales")?;
            Residuals::Sq8(Sq8Quantizer::from_parts(mins, scales)?)
        }
        IvfCodec::OpqPq { m } => {
            let pq =
                ProductQuantizer::from_parts(dim, m, r.f32s(dim * PQ_CODEWORDS, "codebooks")?)?;
            let rotation = Rotation::from_transposed(dim, r.f32s(dim * dim, "rotation")?)?;
            let mut rotated_centroids = vec![0f32; centroids.len()];
            rotation.apply_rows(&centroids, &mut rotated_centroids);
            Residuals::OpqPq {
                rotation,
                pq,
                rotated_centroids,
            }
        }
        IvfCodec::Pq4 { m } => {
            let codebooks = r.f32s(dim * PQ4_CODEWORDS, "pq4 codebooks")?;
            let gain = if format >= 2 {
                r.f32s(1, "pq4 gain")?[0]
            } else {
                1.0
            };
            Residuals::Pq4(Pq4Quantizer::from_parts(dim, m, codebooks)?.with_gain(gain)?)
        }
    };
    let fit = if format >= 3 {
        let errors = r.f32s(2, "fit")?;
        let known = |e: f32| (e.is_finite() && e >= 0.0).then_some(e);
        let trained_rows = r.u64("trained rows")?;
        super::IvfFit {
            rows_error: known(errors[0]),
            trained_error: known(errors[1]),
            trained_rows: (trained_rows != u64::MAX).then_some(trained_rows),
        }
    } else {
        super::IvfFit::default()
    };
    let coarse = (nlist >= COARSE_HNSW_MIN_LISTS).then(|| Arc::new(coarse_graph(&centroids, dim)));
    Ok(IvfIndex {
        params,
        dim,
        metric,
        centroids,
        offsets,
        rows,
        blocks,
        codes,
        residuals,
        coarse,
        fit,
        sq8_norms: std::sync::OnceLock::new(),
        quantisers_id: std::sync::OnceLock::new(),
    })
}

/// Total 32-row blocks of a pq4 index, read ahead from the list offsets that follow the
/// centroids (without consuming them); an error if they are not there.
fn pq4_blocks_in(bytes: &[u8], r: &Reader<'_>, nlist: usize, dim: usize) -> Result<usize, String> {
    let at = bytes.len() - r.remaining();
    let start = nlist
        .checked_mul(dim)
        .and_then(|x| x.checked_mul(4))
        .and_then(|x| x.checked_add(at))
        .ok_or("centroids too large")?;
    let end = (nlist + 1)
        .checked_mul(4)
        .and_then(|x| x.checked_add(start))
        .ok_or("offsets too large")?;
    let raw = bytes
        .get(start..end)
        .ok_or("body too short for the list offsets")?;
    let offsets: Vec<u32> = raw
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("list offsets are not increasing".into());
    }
    Ok(offsets
        .windows(2)
        .map(|w| pq4::blocks_for((w[1] - w[0]) as usize))
        .sum())
}
