//! Encoded traversal vectors: byte round trips, damaged bytes, distances against the
//! decoded rows, and the recall of `search_encoded` against exact search.

use paradox_index::hnsw::NodeDistance;
use paradox_index::{
    search_encoded, EncodedVectors, FlatIndex, HnswIndex, HnswParams, Metric, SearchParams,
    VectorEncoding, VectorIndex, VectorView,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// Gaussian-mixture data, as in the HNSW tests: `clusters` centres, points around them.
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        for j in 0..dim {
            let noise: f32 = (0..4).map(|_| rng.random_range(-0.15f32..0.15)).sum();
            data.push(centres[c * dim + j] + noise);
        }
    }
    data
}

fn normalized(mut data: Vec<f32>, dim: usize) -> Vec<f32> {
    data.chunks_exact_mut(dim).for_each(|v| {
        paradox_kernels::normalize(v);
    });
    data
}

/// The decoded rows of `encoded` (through the public codecs).
fn decoded(encoded: &EncodedVectors, rows: &[f32]) -> Vec<f32> {
    let dim = encoded.dim();
    let mut out = vec![0f32; rows.len()];
    let mut code = vec![0u8; 2 * dim];
    for (row, back) in rows.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        match encoded.encoding() {
            VectorEncoding::F32 => back.copy_from_slice(row),
            VectorEncoding::F16 => {
                paradox_kernels::quant::encode_f16(row, &mut code);
                paradox_kernels::quant::decode_f16(&code, back);
            }
            VectorEncoding::Bf16 => {
                paradox_kernels::quant::encode_bf16(row, &mut code);
                paradox_kernels::quant::decode_bf16(&code, back);
            }
            VectorEncoding::Sq8 => {
                let sq8 = encoded.sq8().unwrap();
                sq8.encode(row, &mut code[..dim]);
                sq8.decode(&code[..dim], back);
            }
        }
    }
    out
}

#[test]
fn encoding_names_round_trip() {
    for e in VectorEncoding::ALL {
        assert_eq!(VectorEncoding::parse(e.as_str()), Some(e));
        assert_eq!(VectorEncoding::parse(&e.as_str().to_uppercase()), Some(e));
    }
    assert_eq!(VectorEncoding::parse("int8"), Some(VectorEncoding::Sq8));
    assert_eq!(VectorEncoding::parse("pq"), None);
}

#[test]
fn distances_are_those_to_the_decoded_rows() {
    let dim = 37;
    for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
        let mut data = clustered(300, dim, 5, 3);
        let mut query = clustered(1, dim, 5, 4);
        if metric == Metric::Cosine {
            data = normalized(data, dim);
            query = normalized(query, dim);
        }
        let view = VectorView {
            data: &data,
            dim,
            metric,
        };
        for encoding in VectorEncoding::ALL {
            let encoded = EncodedVectors::encode(view, encoding);
            assert_eq!((encoded.len(), encoded.dim()), (300, dim));
            let back = decoded(&encoded, &data);
            let dist = encoded.query_distance(&query);
            // SQ8 may round the folded query to `i8` steps (AVX-512 VNNI): half a step of
            // the largest weight per unit of code. The weights are `q_i · scale_i` (dot)
            // or `−2 (q_i − min_i) · scale_i` (L2).
            let step = encoded.sq8().map_or(0.0, |sq8| {
                let weight = |i: usize| match metric {
                    Metric::L2 => 2.0 * (query[i] - sq8.mins()[i]) * sq8.scales()[i],
                    _ => query[i] * sq8.scales()[i],
                };
                (0..dim).map(|i| weight(i).abs()).fold(0f32, f32::max) / 127.0
            });
            for (i, row) in back.chunks_exact(dim).enumerate() {
                use paradox_index::hnsw::NodeDistance;
                let want = metric.distance(&query, row);
                let scale: f32 = query.iter().zip(row).map(|(a, b)| (a * b).abs()).sum();
                let rounding = step / 2.0 * 255.0 * dim as f32;
                let got = dist.distance(i as u32);
                assert!(
                    (got - want).abs() <= 1e-4 * (scale + want.abs() + 10.0) + rounding,
                    "{metric} {encoding} row {i}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn push_encodes_like_a_bulk_encode_with_the_same_ranges() {
    let dim = 20;
    let data = clustered(50, dim, 3, 5);
    let view = |n: usize| VectorView {
        data: &data[..n * dim],
        dim,
        metric: Metric::L2,
    };
    for encoding in VectorEncoding::ALL {
        let mut grown = EncodedVectors::encode(view(49), encoding);
        grown.push(&data[49 * dim..]);
        let all = EncodedVectors::encode(view(50), encoding);
        assert_eq!(grown.len(), 50);
        if encoding == VectorEncoding::Sq8 {
            // The ranges stay those of the first 49 rows; the codes of those rows match
            // a re-encode with them.
            let back = EncodedVectors::from_bytes(&grown.to_bytes()).unwrap();
            assert_eq!(back, grown);
        } else {
            assert_eq!(grown.to_bytes(), all.to_bytes(), "{encoding}");
        }
    }
}

#[test]
fn memory_is_a_quarter_of_f32_for_sq8_and_half_for_f16() {
    let dim = 128;
    let data = clustered(2000, dim, 10, 6);
    let view = VectorView {
        data: &data,
        dim,
        metric: Metric::L2,
    };
    let bytes = |e| EncodedVectors::encode(view, e).memory_bytes() as f64;
    let f32_bytes = bytes(VectorEncoding::F32);
    assert!((f32_bytes - (data.len() * 4) as f64).abs() < 1024.0);
    for (e, ratio) in [
        (VectorEncoding::F16, 0.5),
        (VectorEncoding::Bf16, 0.5),
        (VectorEncoding::Sq8, 0.25),
    ] {
        let got = bytes(e) / f32_bytes;
        assert!((got - ratio).abs() < 0.01, "{e}: {got:.3} of f32");
    }
}

fn sample(encoding: VectorEncoding, metric: Metric, rows: usize, dim: usize) -> EncodedVectors {
    let data = clustered(rows, dim, 4, rows as u64 + dim as u64);
    EncodedVectors::encode(
        VectorView {
            data: &data,
            dim,
            metric,
        },
        encoding,
    )
}

#[test]
fn bytes_round_trip_for_every_encoding_and_metric() {
    for encoding in VectorEncoding::ALL {
        for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
            for (rows, dim) in [(0, 0), (0, 5), (1, 1), (17, 33), (64, 128)] {
                let encoded = sample(encoding, metric, rows, dim);
                let bytes = encoded.to_bytes();
                let back = EncodedVectors::from_bytes(&bytes).expect("round trip");
                assert_eq!(back, encoded, "{encoding} {metric} {rows}x{dim}");
                assert_eq!(back.to_bytes(), bytes);
                let shared = EncodedVectors::from_shared(Arc::new(bytes.clone())).unwrap();
                assert_eq!(
                    shared, encoded,
                    "in place: {encoding} {metric} {rows}x{dim}"
                );
                assert_eq!(shared.codes_in_place(), encoding != VectorEncoding::F32);
            }
        }
    }
}

#[test]
fn codes_read_in_place_score_like_a_copy_and_are_copied_before_a_push() {
    let (rows, dim) = (300, 48);
    let data = clustered(rows + 1, dim, 4, 5);
    let view = VectorView {
        data: &data[..rows * dim],
        dim,
        metric: Metric::L2,
    };
    for encoding in [
        VectorEncoding::Sq8,
        VectorEncoding::F16,
        VectorEncoding::Bf16,
    ] {
        let encoded = EncodedVectors::encode(view, encoding);
        let bytes: Arc<Vec<u8>> = Arc::new(encoded.to_bytes());
        let mut shared = EncodedVectors::from_shared(bytes.clone()).unwrap();
        assert!(shared.codes_in_place());
        assert!(shared.memory_bytes() < encoded.memory_bytes() / 4);
        let query = &data[7 * dim..8 * dim];
        let (a, b) = (encoded.query_distance(query), shared.query_distance(query));
        let nodes: Vec<u32> = (0..rows as u32).collect();
        let (mut da, mut db) = (vec![0f32; rows], vec![0f32; rows]);
        a.distances(&nodes, &mut da);
        b.distances(&nodes, &mut db);
        assert_eq!(da, db, "{encoding}");
        let mut grown = encoded.clone();
        grown.push(&data[rows * dim..]);
        shared.push(&data[rows * dim..]);
        assert!(!shared.codes_in_place());
        assert_eq!(shared, grown);
        assert_eq!(
            &bytes[..],
            &encoded.to_bytes()[..],
            "the shared bytes are untouched"
        );
    }
    assert!(EncodedVectors::from_shared(Arc::new(vec![0u8; 10])).is_err());
}

#[test]
fn damaged_headers_and_sizes_are_errors() {
    let good = sample(VectorEncoding::Sq8, Metric::L2, 10, 8).to_bytes();
    let damaged = |at: usize, value: &[u8]| {
        let mut b = good.clone();
        b[at..at + value.len()].copy_from_slice(value);
        EncodedVectors::from_bytes(&b).unwrap_err().to_string()
    };
    assert!(damaged(0, &[2]).contains("format 2"));
    assert!(damaged(4, &[9]).contains("encoding tag 9"));
    assert!(damaged(5, &[7]).contains("metric tag 7"));
    assert!(damaged(6, &[1]).contains("reserved"));
    assert!(damaged(8, &u64::MAX.to_le_bytes()).contains("do not fit"));
    let mut zero_dim = sample(VectorEncoding::F16, Metric::L2, 0, 0).to_bytes();
    zero_dim[16..24].copy_from_slice(&5u64.to_le_bytes());
    let err = EncodedVectors::from_bytes(&zero_dim)
        .unwrap_err()
        .to_string();
    assert!(err.contains("zero dimensions"), "{err}");
    assert!(damaged(16, &(1u64 << 61).to_le_bytes()).contains("do not fit"));
    // A NaN minimum (first f32 after the header).
    assert!(damaged(24, &f32::NAN.to_le_bytes()).contains("dimension 0"));
    // A negative scale for dimension 3.
    assert!(damaged(24 + 4 * 8 + 12, &(-1f32).to_le_bytes()).contains("dimension 3"));
    for cut in 0..good.len() {
        assert!(
            EncodedVectors::from_bytes(&good[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(EncodedVectors::from_bytes(&longer).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any corruption decodes to an error or to some valid value, never a panic.
    #[test]
    fn random_damage_never_panics(
        encoding in 0usize..4, at in 0usize..400, byte: u8, cut in 0usize..600,
    ) {
        let encoding = VectorEncoding::ALL[encoding];
        let mut bytes = sample(encoding, Metric::Dot, 5, 9).to_bytes();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut.max(1));
        if let Ok(decoded) = EncodedVectors::from_bytes(&bytes) {
            prop_assert_eq!(decoded.to_bytes(), bytes);
        }
    }
}

/// Recall@k of `search` against exact search, over `queries`.
fn recall(
    view: VectorView<'_>,
    queries: &[f32],
    k: usize,
    search: impl Fn(&[f32]) -> Vec<paradox_index::Neighbor>,
) -> f64 {
    let mut hits = 0;
    for q in queries.chunks_exact(view.dim) {
        let truth = FlatIndex.search(view, q, k, None, &SearchParams::default());
        let got = search(q);
        assert!(got.len() <= k && got.windows(2).all(|w| w[0].distance <= w[1].distance));
        hits += got
            .iter()
            .filter(|n| truth.iter().any(|t| t.key == n.key))
            .count();
    }
    hits as f64 / (k * queries.len() / view.dim) as f64
}

#[test]
fn encoded_search_with_rerank_matches_f32_recall() {
    let (dim, k, ef) = (64, 10, 128);
    for metric in [Metric::L2, Metric::Cosine] {
        let mut data = clustered(6000, dim, 30, 11);
        let mut queries = clustered(100, dim, 30, 12);
        if metric == Metric::Cosine {
            data = normalized(data, dim);
            queries = normalized(queries, dim);
        }
        let view = VectorView {
            data: &data,
            dim,
            metric,
        };
        // One build thread: the graph, hence the recall, is the same on every run.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let index = pool.install(|| HnswIndex::build(view, HnswParams::default()));
        let search_params = SearchParams {
            ef: Some(ef),
            nprobe: None,
            ..Default::default()
        };
        let f32_recall = recall(view, &queries, k, |q| {
            index.search(view, q, k, None, &search_params)
        });
        for encoding in [
            VectorEncoding::Sq8,
            VectorEncoding::F16,
            VectorEncoding::Bf16,
        ] {
            let encoded = EncodedVectors::encode(view, encoding);
            for rerank in [1, 3] {
                let got = recall(view, &queries, k, |q| {
                    search_encoded(&index, &encoded, view, q, k, ef, rerank, None)
                });
                println!(
                    "{metric} {encoding} rerank {rerank} ef {ef}: recall@{k} {got:.4} \
                     (f32 search {f32_recall:.4})"
                );
                if rerank == 3 {
                    assert!(got >= 0.95, "{metric} {encoding}: recall {got}");
                    assert!(
                        got >= f32_recall - 0.01,
                        "{metric} {encoding}: {got} vs {f32_recall}"
                    );
                }
            }
        }
        // f32 "encoding": the graph's own search.
        let encoded = EncodedVectors::encode(view, VectorEncoding::F32);
        for q in queries.chunks_exact(dim).take(10) {
            let want = index.search(view, q, k, None, &search_params);
            let got = search_encoded(&index, &encoded, view, q, k, ef, 3, None);
            // The same rows; distances to the last bits (the graph's search computes them
            // several rows at a time, in another summation order).
            let keys =
                |hits: &[paradox_index::Neighbor]| hits.iter().map(|h| h.key).collect::<Vec<_>>();
            assert_eq!(keys(&got), keys(&want));
            for (g, w) in got.iter().zip(&want) {
                assert!((g.distance - w.distance).abs() <= 1e-5 * w.distance.abs().max(1.0));
            }
        }
    }
}

#[test]
fn encoded_search_honours_the_filter_and_deletions() {
    let dim = 16;
    let data = clustered(2000, dim, 8, 21);
    let view = VectorView {
        data: &data,
        dim,
        metric: Metric::L2,
    };
    let mut index = HnswIndex::build(view, HnswParams::default());
    for row in (0..2000).step_by(3) {
        index.delete(row);
    }
    let encoded = EncodedVectors::encode(view, VectorEncoding::Sq8);
    let even = |r: u32| r.is_multiple_of(2);
    for q in clustered(20, dim, 8, 22).chunks_exact(dim) {
        let got = search_encoded(&index, &encoded, view, q, 10, 64, 3, Some(&even));
        assert_eq!(got.len(), 10);
        for n in &got {
            let row = n.key as u32;
            assert!(even(row) && !row.is_multiple_of(3), "row {row} returned");
            // Re-ranked: the reported distance is the exact f32 one (to the last bits: the
            // re-rank reads several rows at a time, in another summation order).
            let exact = Metric::L2.distance(q, view.row(row as usize));
            assert!(
                (n.distance - exact).abs() <= 1e-5 * exact.max(1.0),
                "{n:?} vs {exact}"
            );
        }
    }
    assert!(search_encoded(&index, &encoded, view, &data[..dim], 0, 64, 3, Some(&even)).is_empty());
}
