//! Rewriting a graph without its deleted rows: [`HnswIndex::compacted`] (repair a copy
//! with a short local beam, renumber) against building the graph anew over the rows left.
//!
//! ```text
//! cargo run --release -p paradox-index --example compaction -- [base.npy] [queries]
//! ```
//!
//! Without a file: 100,000 clustered 128-d vectors (L2). With a `.npy` of f32 rows (e.g.
//! `bench/data/minilm-wn30-s0-n110000-q1000.base.npy`): those rows, cosine, and the first
//! `queries` rows (default 1,000) double as queries (they stay in the data). M = 16,
//! efConstruction = 200, all threads. For 5 %, 10 % and 20 % of the rows dropped at
//! random: seconds to rebuild and to compact (per repair beam), and recall@10 at ef 64 of
//! each graph against exact search over the rows left. One JSON object per line.

mod common;

use common::clustered;
use std::time::Instant;

use paradox_index::{
    FlatIndex, HnswIndex, HnswParams, Metric, SearchParams, VectorIndex, VectorView,
};
use rand::{Rng, SeedableRng};

const K: usize = 10;
const EF: usize = 64;

/// A 2-d little-endian f32 `.npy` file: (rows, dim, data).
fn read_npy(path: &str) -> (usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    assert!(bytes.starts_with(b"\x93NUMPY"), "{path} is not a .npy file");
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("npy header");
    assert!(
        header.contains("'<f4'"),
        "{path}: rows must be little-endian f32"
    );
    assert!(
        !header.contains("'fortran_order': True"),
        "{path}: C order only"
    );
    let shape = &header[header.find("'shape': (").expect("npy shape") + 10..];
    let dims: Vec<usize> = shape[..shape.find(')').expect("npy shape")]
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    assert_eq!(dims.len(), 2, "{path}: a 2-d array is needed");
    let data = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect::<Vec<_>>();
    assert_eq!(data.len(), dims[0] * dims[1], "{path}: truncated");
    (dims[1], data)
}

fn recall(index: &HnswIndex, view: VectorView<'_>, queries: &[f32]) -> f64 {
    let params = SearchParams {
        ef: Some(EF),
        ..Default::default()
    };
    let mut hits = 0;
    let mut total = 0;
    for q in queries.chunks_exact(view.dim) {
        let truth = FlatIndex.search(view, q, K, None, &SearchParams::default());
        let found = index.search(view, q, K, None, &params);
        hits += found
            .iter()
            .filter(|n| truth.iter().any(|t| t.key == n.key))
            .count();
        total += truth.len();
    }
    hits as f64 / total as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let queries_wanted: usize = args.get(1).map_or(1000, |q| q.parse().expect("queries"));
    let (dim, data, metric, source) = match args.first() {
        Some(path) => {
            let (dim, data) = read_npy(path);
            (dim, data, Metric::Cosine, path.clone())
        }
        None => (
            128,
            clustered(100_000, 128, 100, 1),
            Metric::L2,
            "clustered".into(),
        ),
    };
    let rows = data.len() / dim;
    let queries = &data[..queries_wanted.min(rows) * dim];
    let params = HnswParams {
        m: 16,
        ef_construction: 200,
        ..Default::default()
    };
    let view = VectorView {
        data: &data,
        dim,
        metric,
    };
    let started = Instant::now();
    let full = HnswIndex::build(view, params);
    println!(
        "{{\"data\":\"{source}\",\"rows\":{rows},\"dim\":{dim},\"threads\":{},\"build_s\":{:.2}}}",
        rayon::current_num_threads(),
        started.elapsed().as_secs_f64()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for dropped_fraction in [0.05, 0.1, 0.2] {
        let dropped: Vec<bool> = (0..rows)
            .map(|_| rng.random_bool(dropped_fraction))
            .collect();
        let kept: Vec<f32> = data
            .chunks_exact(dim)
            .zip(&dropped)
            .filter(|(_, &d)| !d)
            .flat_map(|(row, _)| row.iter().copied())
            .collect();
        let kept_view = VectorView {
            data: &kept,
            dim,
            metric,
        };
        let started = Instant::now();
        let rebuilt = HnswIndex::build(kept_view, params);
        let rebuild_s = started.elapsed().as_secs_f64();
        let rebuilt_recall = recall(&rebuilt, kept_view, queries);
        for repair_ef in [16, 32, 64, 200] {
            let started = Instant::now();
            let compacted = full.compacted(view, &|row| !dropped[row as usize], repair_ef);
            let compact_s = started.elapsed().as_secs_f64();
            println!(
                "{{\"dropped\":{dropped_fraction},\"rebuild_s\":{rebuild_s:.2},\
                 \"rebuild_recall\":{rebuilt_recall:.4},\"repair_ef\":{repair_ef},\
                 \"compact_s\":{compact_s:.2},\"compact_recall\":{:.4},\"speedup\":{:.1}}}",
                recall(&compacted, kept_view, queries),
                rebuild_s / compact_s
            );
        }
    }
}
