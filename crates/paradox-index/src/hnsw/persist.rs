//! Byte encoding of an HNSW index (little-endian; the caller wraps it in a checksummed
//! container). Layout:
//!
//! ```text
//! u32 format (1) | u32 m | u32 ef_construction | u32 ef_search | u64 seed | u64 n
//! u64 upper_len | u32 entry (u32::MAX = none) | u32 max_level | u64 deleted_words
//! n × u8 levels, zero-padded to a multiple of 4
//! n × (1 + 2m) × u32 level-0 blocks [count, links...]
//! n × u32 upper_offsets (u32::MAX = level 0 only)
//! upper_len × u32 upper blocks
//! deleted_words × u64 tombstone bitset
//! ```
//!
//! Decoding checks every size, offset and link against `n`, so a damaged buffer is an
//! error, never a panic or an out-of-bounds read later.

use super::graph::{Graph, Links, NONE};
use super::{HnswIndex, HnswParams};
use crate::SharedBytes;
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;

const FORMAT: u32 = 1;

/// Why bytes did not decode as an HNSW index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HnswDecodeError(pub String);

impl std::fmt::Display for HnswDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid HNSW index bytes: {}", self.0)
    }
}

impl std::error::Error for HnswDecodeError {}

impl HnswIndex {
    /// Encodes the index.
    pub fn to_bytes(&self) -> Vec<u8> {
        let g = &self.graph;
        let n = g.len();
        let mut out = Vec::with_capacity(64 + n * (5 + 4 * (1 + g.m0)) + g.upper.len() * 4);
        for v in [
            FORMAT,
            self.params.m as u32,
            self.params.ef_construction as u32,
            self.params.ef_search as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.params.seed.to_le_bytes());
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&(g.upper.len() as u64).to_le_bytes());
        out.extend_from_slice(&g.entry.load(Relaxed).to_le_bytes());
        out.extend_from_slice(&g.max_level.load(Relaxed).to_le_bytes());
        out.extend_from_slice(&(self.deleted.len() as u64).to_le_bytes());
        out.extend_from_slice(&g.levels);
        out.resize(out.len() + (4 - n % 4) % 4, 0);
        for i in 0..g.level0.len() {
            out.extend_from_slice(&g.level0.load(i).to_le_bytes());
        }
        for o in &g.upper_offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        for i in 0..g.upper.len() {
            out.extend_from_slice(&g.upper.load(i).to_le_bytes());
        }
        for w in &self.deleted {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Decodes bytes written by [`HnswIndex::to_bytes`], checking every field.
    pub fn from_bytes(bytes: &[u8]) -> Result<HnswIndex, HnswDecodeError> {
        decode(bytes, None)
    }

    /// Like [`HnswIndex::from_bytes`], but the link arrays are read in place from
    /// `shared` (typically a memory-mapped index file section) instead of copied:
    /// opening reads every link once to check it and allocates none. They are copied
    /// only if the graph changes later ([`HnswIndex::insert`], [`HnswIndex::repair`]).
    /// Where they cannot be read in place (a big-endian target, or bytes not 4-aligned
    /// in memory) they are copied, as by `from_bytes`.
    pub fn from_shared(shared: SharedBytes) -> Result<HnswIndex, HnswDecodeError> {
        decode((*shared).as_ref(), Some(shared.clone()))
    }

    /// Whether the graph's links are read in place from shared bytes (see
    /// [`HnswIndex::from_shared`]).
    pub fn links_in_place(&self) -> bool {
        self.graph.is_shared()
    }
}

/// The little-endian `u32`s of `region`: borrowed where they can be read in place, else
/// decoded into a vector.
fn words(region: &[u8]) -> Cow<'_, [u32]> {
    if cfg!(target_endian = "little") {
        // SAFETY: every bit pattern is a valid `u32`; `align_to` only yields the aligned
        // middle, and an empty prefix and suffix mean it is the whole region.
        let (head, mid, tail) = unsafe { region.align_to::<u32>() };
        if head.is_empty() && tail.is_empty() {
            return Cow::Borrowed(mid);
        }
    }
    Cow::Owned(
        region
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Link storage for the `len` words at byte `start`: in place in `shared` when possible
/// and asked for, else a copy of `words`.
fn links(shared: &Option<SharedBytes>, start: usize, len: usize, words: &[u32]) -> Links {
    shared
        .clone()
        .and_then(|bytes| Links::in_place(bytes, start, len))
        .unwrap_or_else(|| Links::from_values(words))
}

fn decode(bytes: &[u8], shared: Option<SharedBytes>) -> Result<HnswIndex, HnswDecodeError> {
    let mut r = Cursor { bytes, pos: 0 };
    let format = r.u32("format")?;
    if format != FORMAT {
        return Err(HnswDecodeError(format!(
            "format {format}, this build reads {FORMAT}"
        )));
    }
    let m = r.u32("m")? as usize;
    let params = HnswParams {
        m,
        ef_construction: r.u32("ef_construction")? as usize,
        ef_search: r.u32("ef_search")? as usize,
        seed: r.u64("seed")?,
    };
    params.validate().map_err(HnswDecodeError)?;
    let n = usize::try_from(r.u64("n")?).map_err(|_| HnswDecodeError("n too large".into()))?;
    let upper_len = usize::try_from(r.u64("upper_len")?)
        .map_err(|_| HnswDecodeError("upper too large".into()))?;
    let entry = r.u32("entry")?;
    let max_level = r.u32("max_level")?;
    let deleted_words = usize::try_from(r.u64("deleted_words")?)
        .map_err(|_| HnswDecodeError("bitset too large".into()))?;
    if n >= NONE as usize || upper_len >= NONE as usize {
        return Err(HnswDecodeError(format!(
            "{n} nodes / {upper_len} upper links exceed the u32 range"
        )));
    }
    let m0 = 2 * m;
    let need = n
        .checked_add((4 - n % 4) % 4)
        .and_then(|x| x.checked_add(n.checked_mul(4 * (2 + m0))?))
        .and_then(|x| x.checked_add(upper_len.checked_mul(4)?))
        .and_then(|x| x.checked_add(deleted_words.checked_mul(8)?));
    if need != Some(bytes.len() - r.pos) {
        return Err(HnswDecodeError(format!(
            "body holds {} bytes, header implies {:?}",
            bytes.len() - r.pos,
            need
        )));
    }
    let levels = r.take(n, "levels")?.to_vec();
    r.take((4 - n % 4) % 4, "padding")?;
    let level0_at = r.pos;
    let level0 = words(r.take(n * (1 + m0) * 4, "level0")?);
    let upper_offsets = r.u32s(n, "upper_offsets")?;
    let upper_at = r.pos;
    let upper = words(r.take(upper_len * 4, "upper")?);
    let deleted: Vec<u64> = (0..deleted_words)
        .map(|_| r.u64("deleted"))
        .collect::<Result<_, _>>()?;

    // Structural checks: links point at nodes present on the block's level, counts fit,
    // upper blocks are in range. (Messages are made only for an error.)
    let block_fits = |block: &[u32], cap: usize, level: usize| {
        let count = block[0] as usize;
        count <= cap
            && block[1..1 + count].iter().all(|&l| {
                levels
                    .get(l as usize)
                    .is_some_and(|&at| at as usize >= level)
            })
    };
    let bad_block = |node: usize, level: usize, cap: usize| {
        HnswDecodeError(format!(
            "level-{level} links of node {node}: a count above {cap}, or a link to a node \
             absent from that level"
        ))
    };
    for (node, block) in level0.chunks_exact(1 + m0).enumerate() {
        if !block_fits(block, m0, 0) {
            return Err(bad_block(node, 0, m0));
        }
    }
    for (node, (&level, &offset)) in levels.iter().zip(upper_offsets.iter()).enumerate() {
        if level == 0 {
            if offset != NONE {
                return Err(HnswDecodeError(format!(
                    "node {node} is on level 0 only but has upper links"
                )));
            }
            continue;
        }
        let end = offset as usize + level as usize * (1 + m);
        if offset == NONE || end > upper_len || level as u32 > max_level {
            return Err(HnswDecodeError(format!(
                "upper links of node {node} out of range"
            )));
        }
        for (i, block) in upper[offset as usize..end].chunks_exact(1 + m).enumerate() {
            if !block_fits(block, m, i + 1) {
                return Err(bad_block(node, i + 1, m));
            }
        }
    }
    if (entry != NONE && entry as usize >= n)
        || (entry == NONE
            && n > 0
            && deleted
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>()
                < n)
    {
        return Err(HnswDecodeError(format!(
            "entry point {entry} invalid for {n} nodes"
        )));
    }
    if entry != NONE && levels[entry as usize] as u32 != max_level {
        return Err(HnswDecodeError(
            "entry point is not on the top level".into(),
        ));
    }
    let level0 = links(&shared, level0_at, n * (1 + m0), &level0);
    let upper = links(&shared, upper_at, upper_len, &upper);
    let graph = Graph::from_parts(m, levels, level0, upper_offsets, upper, entry, max_level);
    let deleted_count = deleted.iter().map(|w| w.count_ones() as usize).sum();
    Ok(HnswIndex {
        params,
        graph,
        deleted,
        deleted_count,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], HnswDecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(HnswDecodeError(format!("truncated at {what}"))),
        }
    }
    fn u32(&mut self, what: &str) -> Result<u32, HnswDecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, HnswDecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn u32s(&mut self, n: usize, what: &str) -> Result<Vec<u32>, HnswDecodeError> {
        let b = self.take(n * 4, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}
