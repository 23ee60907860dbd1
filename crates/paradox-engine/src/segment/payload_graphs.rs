//! Payload graphs: a small HNSW graph over the rows of each selective payload value of a
//! sealed segment, so that a search filtered on that value walks a graph of only matching
//! rows instead of scanning them all or wading through a graph of mostly non-matching ones.
//!
//! A filter matching 1 % of a segment is the hard case for a single graph: a traversal
//! with the filter must pass ~100 non-matching nodes per match, so the engine scans the
//! matches exactly instead, which costs a distance per match. With a graph per value
//! (built with the collection's `m` and `ef_construction` over the value's rows) the same
//! search visits a few hundred nodes, reading SQ8 codes of the value's rows kept beside
//! the graph (a quarter of the f32 bytes, contiguous), then re-ranks its beam exactly
//! from the segment's f32 rows.
//!
//! Which values get one: every posting of the segment's payload index (an equality on a
//! key path, answered exactly by the index) holding between [`MIN_ROWS`] rows and
//! [`MAX_FRACTION`] of the segment, smallest first, until the graphs together cover
//! [`ROW_BUDGET`] × the segment's rows. Correctness never depends on them: a search
//! through one still admits only rows its row mask admits; the graph only decides which
//! rows are looked at.
//!
//! Bytes (section 4 of the index file, little-endian; `docs/formats.md`): `u32` count,
//! then per graph `u32` key length, key (UTF-8), `u32` value-key length, value key,
//! `u32` row count, rows (`u32`, strictly ascending), `u64` graph length, graph bytes
//! ([`HnswIndex::to_bytes`]), `u64` codes length, SQ8 codes of the rows in graph order
//! ([`EncodedVectors::to_bytes`]).

use super::PayloadIndex;
use crate::filter::Filter;
use paradox_index::hnsw::NodeDistance;
use paradox_index::{
    EncodedVectors, FlatIndex, HnswIndex, HnswParams, Neighbor, TopK, VectorEncoding, VectorView,
};
use std::collections::HashMap;

/// Values with fewer rows are scanned exactly (a scan of them costs about what a graph
/// search at a usual beam would).
pub const MIN_ROWS: usize = 1024;
/// Values with more than this fraction of a segment's rows are searched through the
/// segment's own graph with the filter applied.
pub const MAX_FRACTION: f64 = 0.1;
/// The graphs of a segment cover at most this many times its rows in all.
pub const ROW_BUDGET: f64 = 1.0;
/// A scan of a value's codes re-ranks this many candidates per hit wanted exactly.
pub const SCAN_RERANK: usize = 2;
/// Code rows a scan scores per call of the batched distance.
const SCAN_BLOCK: usize = 64;

/// The payload graphs of one segment.
#[derive(Debug, Default)]
pub(crate) struct PayloadGraphs {
    /// Key path → value key → graph.
    graphs: HashMap<String, HashMap<String, PayloadGraph>>,
}

/// The graph over the rows of one payload value.
#[derive(Debug)]
pub(crate) struct PayloadGraph {
    /// Segment rows, ascending; graph node `i` is row `rows[i]`.
    rows: Vec<u32>,
    hnsw: HnswIndex,
    /// SQ8 codes of the rows in node order: the walk reads these (a quarter of the f32
    /// bytes, contiguous, so they stay in cache), the final candidates are re-ranked from
    /// the segment's f32 rows.
    codes: EncodedVectors,
}

impl PayloadGraph {
    /// Rows in the graph.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The segment rows of the graph's nodes, ascending: every row holding the value.
    pub fn rows(&self) -> &[u32] {
        &self.rows
    }

    /// The `k` rows closest to `query` among those `accept` admits (all of them with
    /// `None`), found with beam `ef`: `(segment row, distance)`, closest first. Walks the
    /// graph over the SQ8 codes, then re-ranks the whole beam exactly.
    pub fn search(
        &self,
        view: VectorView<'_>,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: Option<&(dyn Fn(u32) -> bool + Sync)>,
    ) -> Vec<Neighbor> {
        let dist = self.codes.query_distance(query);
        let candidates = match accept {
            // Every row of the value passes: the unfiltered beam, one sorted array.
            None => self.hnsw.search_all(&dist, ef.max(k)),
            Some(accept) => {
                let admit = |node: u32| accept(self.rows[node as usize]);
                self.hnsw.search_with(&dist, ef.max(k), &admit)
            }
        };
        self.rerank(view, query, k, candidates.iter().map(|c| c.key))
    }

    /// Like [`PayloadGraph::search`], but by scanning the SQ8 codes of every admitted row
    /// (contiguous, a quarter of the f32 bytes), then re-ranking the best
    /// [`SCAN_RERANK`]` × k` exactly: cheaper than a walk when few rows are admitted.
    pub fn scan(
        &self,
        view: VectorView<'_>,
        query: &[f32],
        k: usize,
        accept: Option<&(dyn Fn(u32) -> bool + Sync)>,
    ) -> Vec<Neighbor> {
        let dist = self.codes.query_distance(query);
        let mut pool = TopK::new(k.saturating_mul(SCAN_RERANK));
        let mut nodes = Vec::with_capacity(SCAN_BLOCK);
        let mut distances = [0f32; SCAN_BLOCK];
        let all = 0..self.rows.len() as u32;
        let mut admitted = all.filter(|&node| accept.is_none_or(|a| a(self.rows[node as usize])));
        loop {
            nodes.clear();
            nodes.extend(admitted.by_ref().take(SCAN_BLOCK));
            if nodes.is_empty() {
                break;
            }
            let distances = &mut distances[..nodes.len()];
            dist.distances(&nodes, distances);
            pool.push_block_rows(0, &nodes, distances);
        }
        let candidates = pool.into_sorted_vec();
        self.rerank(view, query, k, candidates.iter().map(|c| c.key))
    }

    /// The `k` of these graph nodes closest to `query` by the segment's f32 rows.
    fn rerank(
        &self,
        view: VectorView<'_>,
        query: &[f32],
        k: usize,
        nodes: impl Iterator<Item = u64>,
    ) -> Vec<Neighbor> {
        let rows: Vec<u32> = nodes.map(|n| self.rows[n as usize]).collect();
        let mut top = TopK::new(k);
        FlatIndex::scan_rows(view, query, &rows, 0, &mut top);
        top.into_sorted_vec()
    }
}

impl PayloadGraphs {
    /// Builds the graphs the payload index calls for (see the module docs). Runs on the
    /// calling thread's rayon pool.
    pub fn build(index: &PayloadIndex, view: VectorView<'_>, params: HnswParams) -> Self {
        let rows = view.len();
        let max = (rows as f64 * MAX_FRACTION) as usize;
        let mut postings = index.postings_sized(MIN_ROWS, max);
        postings.sort_by(|a, b| (a.2.len(), a.0, &a.1).cmp(&(b.2.len(), b.0, &b.1)));
        let mut budget = (rows as f64 * ROW_BUDGET) as usize;
        let mut graphs = PayloadGraphs::default();
        for (key, value, members) in postings {
            if members.len() > budget {
                break;
            }
            budget -= members.len();
            let mut gathered = Vec::with_capacity(members.len() * view.dim);
            for &row in members {
                gathered.extend_from_slice(view.row(row as usize));
            }
            let subset = VectorView {
                data: &gathered,
                dim: view.dim,
                metric: view.metric,
            };
            let graph = PayloadGraph {
                rows: members.to_vec(),
                hnsw: HnswIndex::build(subset, params),
                codes: EncodedVectors::encode(subset, VectorEncoding::Sq8),
            };
            graphs
                .graphs
                .entry(key.to_string())
                .or_default()
                .insert(value, graph);
        }
        graphs
    }

    /// Number of graphs.
    pub fn len(&self) -> usize {
        self.graphs.values().map(HashMap::len).sum()
    }

    /// The graph whose rows are exactly those `filter` matches: that of an equality.
    pub fn for_value(&self, filter: &Filter) -> Option<&PayloadGraph> {
        match filter {
            Filter::Eq { .. } => self.for_filter(filter),
            _ => None,
        }
    }

    /// The smallest graph whose rows include every row `filter` can match: that of an
    /// equality, or of one of the equalities a conjunction requires.
    pub fn for_filter(&self, filter: &Filter) -> Option<&PayloadGraph> {
        match filter {
            Filter::Eq { key, value } => {
                let value = PayloadIndex::value_key(value)?;
                self.graphs.get(key)?.get(&value)
            }
            Filter::And(parts) => parts
                .iter()
                .filter_map(|p| self.for_filter(p))
                .min_by_key(|g| g.len()),
            _ => None,
        }
    }

    /// The bytes of the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut entries: Vec<(&String, &String, &PayloadGraph)> = self
            .graphs
            .iter()
            .flat_map(|(k, values)| values.iter().map(move |(v, g)| (k, v, g)))
            .collect();
        entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (key, value, graph) in entries {
            for text in [key, value] {
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            out.extend_from_slice(&(graph.rows.len() as u32).to_le_bytes());
            for row in &graph.rows {
                out.extend_from_slice(&row.to_le_bytes());
            }
            for bytes in [graph.hnsw.to_bytes(), graph.codes.to_bytes()] {
                out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                out.extend_from_slice(&bytes);
            }
        }
        out
    }

    /// Decodes [`PayloadGraphs::to_bytes`] for a segment of `segment_rows` rows, checking
    /// every length, that rows ascend inside the segment and that each graph has a node
    /// per row.
    pub fn from_bytes(bytes: &[u8], segment_rows: usize, dim: usize) -> Result<Self, String> {
        let mut r = Cursor { bytes, at: 0 };
        let count = r.u32("graph count")?;
        let mut graphs = PayloadGraphs::default();
        for i in 0..count {
            let key = r.text("key")?;
            let value = r.text("value key")?;
            let n = r.u32("row count")? as usize;
            let raw = r.take(n.checked_mul(4).ok_or("row count overflows")?, "rows")?;
            let rows: Vec<u32> = raw
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            if rows.windows(2).any(|w| w[0] >= w[1])
                || rows.last().is_some_and(|&l| l as usize >= segment_rows)
            {
                return Err(format!(
                    "payload graph {i}: rows not ascending inside the segment"
                ));
            }
            let len = r.u64("graph length")?;
            let len = usize::try_from(len).map_err(|_| "graph length overflows")?;
            let hnsw = HnswIndex::from_bytes(r.take(len, "graph")?)
                .map_err(|e| format!("payload graph {i}: {e}"))?;
            let len = r.u64("codes length")?;
            let len = usize::try_from(len).map_err(|_| "codes length overflows")?;
            let codes = EncodedVectors::from_bytes(r.take(len, "codes")?)
                .map_err(|e| format!("payload graph {i}: {e}"))?;
            if hnsw.len() != rows.len() || codes.len() != rows.len() || codes.dim() != dim {
                return Err(format!(
                    "payload graph {i}: {} nodes and {} codes of {} dimensions for {} rows of {dim}",
                    hnsw.len(),
                    codes.len(),
                    codes.dim(),
                    rows.len()
                ));
            }
            graphs
                .graphs
                .entry(key)
                .or_default()
                .insert(value, PayloadGraph { rows, hnsw, codes });
        }
        if r.at != bytes.len() {
            return Err("trailing bytes after the payload graphs".into());
        }
        Ok(graphs)
    }
}

/// Reads the little-endian fields of [`PayloadGraphs::from_bytes`].
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("payload graphs truncated in {what}"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn text(&mut self, what: &str) -> Result<String, String> {
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("payload graphs: {what} is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::payload;
    use crate::point::{PointId, RowMeta};
    use paradox_index::Metric;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    const DIM: usize = 8;

    const ROWS: usize = 12_000;

    /// 12,000 rows (a value may hold 1,024 to 1,200): `kind` "x" on i % 11 == 1 (1,091
    /// rows: a graph), `n` 7 on i % 11 == 2 (1,091: a graph, a number key), `team` true on
    /// every 16th (750: too few), `group` i % 3 (4,000 each: too many).
    fn fixture() -> (Vec<f32>, PayloadIndex) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let data: Vec<f32> = (0..ROWS * DIM)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let metas: Vec<RowMeta> = (0..ROWS)
            .map(|i| RowMeta {
                id: PointId::Num(i as u64),
                payload: payload(json!({
                    "team": i % 16 == 0,
                    "group": i % 3,
                    "kind": if i % 11 == 1 { "x" } else { "y" },
                    "n": if i % 11 == 2 { 7.0 } else { 1.5 },
                }))
                .into(),
                encoder_version: None,
                provenance: None,
                created_at: 0,
                updated_at: 0,
            })
            .collect();
        (data, PayloadIndex::build(metas.iter().map(|m| &m.payload)))
    }

    fn view(data: &[f32]) -> VectorView<'_> {
        VectorView {
            data,
            dim: DIM,
            metric: Metric::L2,
        }
    }

    fn params() -> HnswParams {
        HnswParams {
            m: 8,
            ef_construction: 64,
            ..HnswParams::default()
        }
    }

    #[test]
    fn graphs_cover_the_selective_values_and_find_their_rows() {
        let (data, index) = fixture();
        let graphs = PayloadGraphs::build(&index, view(&data), params());
        assert_eq!(graphs.len(), 2, "{graphs:?}");
        let kind = graphs.for_filter(&Filter::eq("kind", "x")).expect("kind x");
        assert_eq!(kind.len(), 1091);
        assert!(graphs.for_filter(&Filter::eq("n", 7)).is_some());
        assert!(graphs.for_filter(&Filter::eq("n", 7.0)).is_some());
        // Too few rows, too many, or not an equality: no graph.
        for f in [
            Filter::eq("team", true),
            Filter::eq("group", 1),
            Filter::eq("kind", "y"),
            Filter::eq("kind", "z"),
            Filter::Not(Box::new(Filter::eq("kind", "x"))),
        ] {
            assert!(graphs.for_filter(&f).is_none(), "{f:?}");
        }
        // A conjunction uses the smallest graph among its equalities.
        let both = Filter::And(vec![Filter::eq("n", 7), Filter::eq("kind", "x")]);
        assert_eq!(graphs.for_filter(&both).map(PayloadGraph::len), Some(1091));

        // Hits are segment rows of the value that `accept` admits, exactly re-ranked.
        let members: Vec<u32> = (0..ROWS as u32).filter(|i| i % 11 == 1).collect();
        let v = view(&data);
        let mut found = 0;
        for q in 0..20usize {
            let query = v.row(q * 7).to_vec();
            let odd_only = |row: u32| row % 2 == 1;
            let hits = kind.search(v, &query, 10, 64, Some(&odd_only));
            assert_eq!(hits.len(), 10);
            for h in &hits {
                assert!(odd_only(h.key as u32) && members.contains(&(h.key as u32)));
                let exact = Metric::L2.distance(&query, v.row(h.key as usize));
                assert!((h.distance - exact).abs() <= 1e-5 * exact.max(1.0));
            }
            let mut truth: Vec<(f32, u32)> = members
                .iter()
                .filter(|&&r| odd_only(r))
                .map(|&r| (Metric::L2.distance(&query, v.row(r as usize)), r))
                .collect();
            truth.sort_by(|a, b| a.0.total_cmp(&b.0));
            let want: Vec<u64> = truth[..10].iter().map(|t| t.1 as u64).collect();
            found += hits.iter().filter(|h| want.contains(&h.key)).count();
        }
        assert!(found >= 190, "recall {found}/200");
    }

    #[test]
    fn bytes_round_trip_and_damage_is_an_error() {
        let (data, index) = fixture();
        let graphs = PayloadGraphs::build(&index, view(&data), params());
        let bytes = graphs.to_bytes();
        let back = PayloadGraphs::from_bytes(&bytes, ROWS, DIM).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(
            PayloadGraphs::from_bytes(&0u32.to_le_bytes(), 10, DIM)
                .unwrap()
                .len(),
            0
        );
        // Every truncation, a segment too short for the rows, another dimension, and
        // trailing bytes are refused with a reason, never a panic.
        for cut in (0..bytes.len()).step_by(bytes.len() / 300) {
            assert!(PayloadGraphs::from_bytes(&bytes[..cut], ROWS, DIM).is_err());
        }
        let short = PayloadGraphs::from_bytes(&bytes, 9000, DIM).unwrap_err();
        assert!(
            short.contains("rows not ascending inside the segment"),
            "{short}"
        );
        assert!(PayloadGraphs::from_bytes(&bytes, ROWS, DIM + 1).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(PayloadGraphs::from_bytes(&longer, ROWS, DIM)
            .unwrap_err()
            .contains("trailing"));
    }

    #[test]
    fn the_row_budget_keeps_the_smallest_values() {
        // 20 values of 1,100 rows each on a 22,000-row segment: 5 % each, 100 % together;
        // the budget (1× the rows) admits all 20.
        let rows = 22_000;
        let data = vec![0.5f32; rows * DIM];
        let metas: Vec<RowMeta> = (0..rows)
            .map(|i| RowMeta {
                id: PointId::Num(i as u64),
                payload: payload(json!({"v": i % 20, "w": i % 10})).into(),
                encoder_version: None,
                provenance: None,
                created_at: 0,
                updated_at: 0,
            })
            .collect();
        let index = PayloadIndex::build(metas.iter().map(|m| &m.payload));
        let graphs = PayloadGraphs::build(&index, view(&data), params());
        // `v` values (1,100 rows) fill the budget first; `w` values (2,200) no longer fit.
        assert_eq!(graphs.len(), 20);
        assert!(graphs.for_filter(&Filter::eq("v", 3)).is_some());
        assert!(graphs.for_filter(&Filter::eq("w", 3)).is_none());
    }
}
