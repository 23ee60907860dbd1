use super::*;
use crate::testdata::clustered;
use crate::FlatIndex;

/// One of each codec, sized for the 32-dimensional test data.
const EVERY_CODEC: [IvfCodec; 5] = [
    IvfCodec::Flat,
    IvfCodec::Pq { m: 8 },
    IvfCodec::Sq8,
    IvfCodec::OpqPq { m: 8 },
    IvfCodec::Pq4 { m: 16 },
];

fn view(data: &[f32], dim: usize, metric: Metric) -> VectorView<'_> {
    VectorView { data, dim, metric }
}

/// Prepares rows for a metric the way a segment does (unit length for cosine).
fn prepared(mut data: Vec<f32>, dim: usize, metric: Metric) -> Vec<f32> {
    if metric.normalizes() {
        for row in data.chunks_exact_mut(dim) {
            paradox_kernels::normalize(row);
        }
    }
    data
}

fn recall(
    index: &IvfIndex,
    v: VectorView<'_>,
    queries: &[f32],
    k: usize,
    nprobe: usize,
    filter: Option<RowFilter<'_>>,
) -> f64 {
    let params = SearchParams {
        ef: None,
        nprobe: Some(nprobe),
        ..Default::default()
    };
    let (mut hit, mut total) = (0, 0);
    for q in queries.chunks_exact(v.dim) {
        let truth = FlatIndex.search(v, q, k, filter, &SearchParams::default());
        let got = index.search(v, q, k, filter, &params);
        if let Some(f) = filter {
            assert!(got.iter().all(|n| f(n.key as u32)), "filtered row returned");
        }
        assert!(got.windows(2).all(|w| w[0].distance <= w[1].distance));
        hit += got
            .iter()
            .filter(|g| truth.iter().any(|t| t.key == g.key))
            .count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

#[test]
fn every_codec_and_metric_reaches_high_recall() {
    let dim = 32;
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let data = prepared(clustered(6000, dim, 40, 1), dim, metric);
        let queries = prepared(clustered(40, dim, 40, 2), dim, metric);
        let v = view(&data, dim, metric);
        for codec in EVERY_CODEC {
            let index = IvfIndex::build(
                v,
                IvfParams {
                    nlist: 64,
                    codec,
                    rerank: 8,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(index.len(), 6000);
            assert_eq!(index.list_sizes().iter().sum::<usize>(), 6000);
            let r = recall(&index, v, &queries, 10, 16, None);
            assert!(r >= 0.9, "{metric} {codec:?}: recall {r}");
        }
    }
}

#[test]
fn probing_every_list_of_a_flat_ivf_is_exact() {
    let dim = 16;
    let data = clustered(3000, dim, 20, 3);
    let queries = clustered(20, dim, 20, 4);
    let v = view(&data, dim, Metric::L2);
    let index = IvfIndex::build(
        v,
        IvfParams {
            nlist: 32,
            codec: IvfCodec::Flat,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(recall(&index, v, &queries, 10, 32, None), 1.0);
}

#[test]
fn more_probes_never_lose_recall_much_and_rerank_helps() {
    let dim = 32;
    let data = clustered(8000, dim, 64, 5);
    let queries = clustered(50, dim, 64, 6);
    let v = view(&data, dim, Metric::L2);
    let build = |rerank| {
        IvfIndex::build(
            v,
            IvfParams {
                nlist: 128,
                codec: IvfCodec::Pq { m: 4 },
                rerank,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let coarse_codes = build(0);
    let reranked = build(8);
    let plain = recall(&coarse_codes, v, &queries, 10, 32, None);
    let better = recall(&reranked, v, &queries, 10, 32, None);
    assert!(
        better > plain + 0.05,
        "re-rank should lift 4-byte PQ: {plain} -> {better}"
    );
    let few = recall(&reranked, v, &queries, 10, 2, None);
    assert!(better >= few, "nprobe 32 {better} < nprobe 2 {few}");
}

#[test]
fn filters_are_respected_and_keep_recall() {
    let dim = 16;
    let data = clustered(5000, dim, 30, 7);
    let queries = clustered(30, dim, 30, 8);
    let v = view(&data, dim, Metric::L2);
    let index = IvfIndex::build(
        v,
        IvfParams {
            nlist: 50,
            codec: IvfCodec::Sq8,
            ..Default::default()
        },
    )
    .unwrap();
    let even = |r: u32| r.is_multiple_of(2);
    let r = recall(&index, v, &queries, 10, 25, Some(&even));
    assert!(r >= 0.9, "filtered recall {r}");
}

#[test]
fn bytes_round_trip_and_search_the_same() {
    let dim = 24;
    let data = clustered(2000, dim, 16, 9);
    let queries = clustered(10, dim, 16, 10);
    let v = view(&data, dim, Metric::Cosine);
    for codec in [
        IvfCodec::Flat,
        IvfCodec::Pq { m: 6 },
        IvfCodec::Sq8,
        IvfCodec::OpqPq { m: 6 },
        IvfCodec::Pq4 { m: 12 },
    ] {
        let index = IvfIndex::build(
            v,
            IvfParams {
                nlist: 20,
                codec,
                ..Default::default()
            },
        )
        .unwrap();
        let bytes = index.to_bytes();
        let back = IvfIndex::from_bytes(&bytes).unwrap();
        assert_eq!(back.params(), index.params());
        assert_eq!(back.to_bytes(), bytes);
        if let (Residuals::Pq4(trained), Residuals::Pq4(read)) = (&index.residuals, &back.residuals)
        {
            assert!(
                trained.gain() > 1.0,
                "4-bit codes attenuate: {}",
                trained.gain()
            );
            assert_eq!(read.gain(), trained.gain());
            // Format 1 had no gain (4 bytes) and no fit (16 bytes, the last): still read,
            // with a gain of 1.
            let mut old = bytes[..bytes.len() - 20].to_vec();
            old[..4].copy_from_slice(&1u32.to_le_bytes());
            let Residuals::Pq4(old_pq) = IvfIndex::from_bytes(&old).unwrap().residuals else {
                panic!("pq4 stays pq4");
            };
            assert_eq!(old_pq.gain(), 1.0);
            assert_eq!(old_pq.codebooks(), trained.codebooks());
            // A format this build does not know is refused.
            let mut new = bytes.clone();
            new[..4].copy_from_slice(&4u32.to_le_bytes());
            assert!(IvfIndex::from_bytes(&new)
                .unwrap_err()
                .0
                .contains("format 4"));
        }
        // The fit is kept from format 3 on; format 2 (no fit, the last 16 bytes) reads
        // with it unknown.
        assert_eq!(back.fit(), index.fit());
        assert_eq!(index.fit().trained_rows, Some(2000));
        let mut older = bytes[..bytes.len() - 16].to_vec();
        older[..4].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            IvfIndex::from_bytes(&older).unwrap().fit(),
            IvfFit::default()
        );
        // A fit that cannot be (a negative error) reads as unknown.
        let mut odd = bytes.clone();
        let at = odd.len() - 12;
        odd[at..at + 4].copy_from_slice(&(-1f32).to_le_bytes());
        assert_eq!(
            IvfIndex::from_bytes(&odd).unwrap().fit().trained_error,
            None
        );
        for q in queries.chunks_exact(dim) {
            let p = SearchParams::default();
            assert_eq!(
                index.search(v, q, 5, None, &p),
                back.search(v, q, 5, None, &p)
            );
        }
        // Damage: truncation and a row number out of range are errors, never panics.
        assert!(IvfIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        let rows_at = 60 + 20 * dim * 4 + 21 * 4;
        bad[rows_at..rows_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = IvfIndex::from_bytes(&bad).unwrap_err();
        assert!(err.0.contains("row number"), "{err}");
    }
}

/// A file in the temp dir removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn paged_lists_search_the_same_within_the_cache_budget() {
    let dim = 24;
    let data = clustered(3000, dim, 16, 21);
    let queries = clustered(20, dim, 16, 22);
    let v = view(&data, dim, Metric::L2);
    for codec in [
        IvfCodec::Pq { m: 6 },
        IvfCodec::Sq8,
        IvfCodec::OpqPq { m: 6 },
        IvfCodec::Pq4 { m: 12 },
    ] {
        let index = IvfIndex::build(
            v,
            IvfParams {
                nlist: 30,
                nprobe: 6,
                codec,
                ..Default::default()
            },
        )
        .unwrap();
        // The index bytes at an offset inside a file, as in a container.
        let bytes = index.to_bytes();
        let offset = 123;
        let path = std::env::temp_dir().join(format!(
            "paradox-ivf-paged-{}-{}.bin",
            std::process::id(),
            codec.as_str()
        ));
        let _cleanup = TempFile(path.clone());
        let mut file_bytes = vec![7u8; offset];
        file_bytes.extend_from_slice(&bytes);
        std::fs::write(&path, &file_bytes).unwrap();
        let shared: SharedBytes = Arc::new(bytes.clone());
        // A budget of about a third of the codes.
        let budget = index.code_bytes() / 3;
        let cache = ListCache::new(budget);
        let open = || {
            IvfIndex::from_file_paged(
                Arc::clone(&shared),
                std::fs::File::open(&path).unwrap(),
                offset as u64,
                Arc::clone(&cache),
            )
            .unwrap()
        };
        let paged = open();
        assert!(paged.codes_on_disk());
        assert!(Arc::ptr_eq(paged.list_cache().unwrap(), &cache));
        assert_eq!(paged.to_bytes(), bytes);
        let p = SearchParams::default();
        for _pass in 0..2 {
            for q in queries.chunks_exact(dim) {
                assert_eq!(
                    index.search(v, q, 10, None, &p),
                    paged.search(v, q, 10, None, &p),
                    "{codec:?}"
                );
                assert!(cache.stats().resident_bytes <= budget as u64);
            }
        }
        // A batch reads each list once per group and finds the same.
        let before = cache.stats();
        assert_eq!(
            paged.search_batch(v, &queries, 10, &p),
            index.search_batch(v, &queries, 10, &p),
            "{codec:?}"
        );
        let after = cache.stats();
        let fetched = after.hits + after.misses - before.hits - before.misses;
        // At most every list once per group, and fewer than one fetch per probe.
        let groups = 20usize.div_ceil(super::batch::DISK_GROUP) as u64;
        assert!(fetched <= groups * 30, "{after:?}");
        assert!(fetched < 20 * 6, "{after:?}");
        let stats = cache.stats();
        assert!(stats.misses > 0 && stats.hits > 0, "{codec:?}: {stats:?}");
        assert!(stats.evictions > 0, "{codec:?}: {stats:?}");
        assert_eq!(stats.read_errors, 0);
        // Dropping the index frees its lists.
        drop(paged);
        assert_eq!(cache.stats().resident_bytes, 0);

        // A file cut short under an open index: the lists it cannot read are left out
        // and counted, never a panic.
        let paged = open();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(offset as u64 + 64)
            .unwrap();
        let q = &queries[..dim];
        let got = paged.search(v, q, 10, None, &p);
        assert!(got.len() <= 10);
        let errors = cache.stats().read_errors;
        assert!(errors > 0, "{codec:?}");
        let batch = paged.search_batch(v, &queries, 10, &p);
        assert_eq!(batch.len(), 20);
        assert!(cache.stats().read_errors > errors, "{codec:?}");
    }
}

#[test]
fn tiny_and_empty_segments_work() {
    let dim = 8;
    let data = clustered(40, dim, 4, 11);
    let v = view(&data, dim, Metric::L2);
    let params = IvfParams {
        codec: IvfCodec::Pq { m: 4 },
        ..Default::default()
    };
    let index = IvfIndex::build(v, params).unwrap();
    assert_eq!(index.nlist(), 40);
    let q = &data[..dim];
    let got = index.search(
        v,
        q,
        3,
        None,
        &SearchParams {
            ef: None,
            nprobe: Some(40),
            ..Default::default()
        },
    );
    assert_eq!(got[0].key, 0);
    // 4-bit codes: lists of one row each (a block per list, 31 padding rows never
    // reported).
    let pq4 = IvfIndex::build(
        v,
        IvfParams {
            codec: IvfCodec::Pq4 { m: 8 },
            ..params
        },
    )
    .unwrap();
    let got = pq4.search(
        v,
        q,
        40,
        None,
        &SearchParams {
            nprobe: Some(40),
            ..Default::default()
        },
    );
    assert_eq!(got.len(), 40);
    assert_eq!(got[0].key, 0);
    let empty = IvfIndex::build(view(&[], dim, Metric::L2), params).unwrap();
    assert!(empty
        .search(
            view(&[], dim, Metric::L2),
            q,
            3,
            None,
            &SearchParams::default()
        )
        .is_empty());
}

#[test]
fn bad_parameters_name_the_field() {
    let data = clustered(300, 10, 4, 12);
    let v = view(&data, 10, Metric::L2);
    let err = IvfIndex::build(
        v,
        IvfParams {
            codec: IvfCodec::Pq { m: 3 },
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.contains("pq m must divide the dimension 10"), "{err}");
    let err = IvfIndex::build(
        v,
        IvfParams {
            nprobe: 0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.contains("nprobe"), "{err}");
}

#[test]
fn many_lists_use_a_coarse_graph() {
    // Enough lists for the HNSW coarse quantiser; searches still find exact duplicates.
    let dim = 4;
    let data = clustered(COARSE_HNSW_MIN_LISTS + 100, dim, 64, 13);
    let v = view(&data, dim, Metric::L2);
    let index = IvfIndex::build(
        v,
        IvfParams {
            nlist: COARSE_HNSW_MIN_LISTS,
            codec: IvfCodec::Flat,
            train_iterations: 2,
            max_points_per_centroid: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(index.coarse.is_some());
    let mut found = 0;
    for row in (0..1000).step_by(10) {
        let q = &data[row * dim..(row + 1) * dim];
        let got = index.search(v, q, 1, None, &SearchParams::default());
        found += (got[0].distance == 0.0) as usize;
    }
    assert!(found >= 95, "{found}/100 duplicates found");
}

#[test]
fn build_like_reuses_the_quantisers_and_keeps_recall() {
    let dim = 32;
    for metric in [Metric::L2, Metric::Cosine] {
        let data = prepared(clustered(8000, dim, 40, 1), dim, metric);
        let queries = prepared(clustered(40, dim, 40, 2), dim, metric);
        let (first, second) = data.split_at(4000 * dim);
        for codec in EVERY_CODEC {
            let params = IvfParams {
                nlist: 64,
                codec,
                rerank: 8,
                ..Default::default()
            };
            let donor = IvfIndex::build(view(first, dim, metric), params).unwrap();
            // On the donor's own rows it files and encodes exactly as the build did.
            let again = donor.build_like(view(first, dim, metric)).unwrap();
            assert_eq!(again.to_bytes(), donor.to_bytes(), "{metric} {codec:?}");
            // On new rows of the same distribution it searches as well as a fresh build.
            let v = view(second, dim, metric);
            let like = donor.build_like(v).unwrap();
            assert_eq!(like.len(), 4000);
            assert_eq!(like.params(), donor.params());
            // The training it reuses is the donor's.
            assert_eq!(like.fit().trained_rows, Some(4000));
            assert_eq!(like.fit().trained_error, donor.fit().trained_error);
            let fresh = IvfIndex::build(v, params).unwrap();
            let (r_like, r_fresh) = (
                recall(&like, v, &queries, 10, 16, None),
                recall(&fresh, v, &queries, 10, 16, None),
            );
            assert!(
                r_like >= 0.9 && r_like >= r_fresh - 0.05,
                "{metric} {codec:?}: recall {r_like} reusing, {r_fresh} fresh"
            );
        }
        let donor = IvfIndex::build(view(first, dim, metric), IvfParams::default()).unwrap();
        let err = donor
            .build_like(view(&first[..dim * 10 / 2 * 2], dim / 2, metric))
            .unwrap_err();
        assert!(err.contains("dimension 16"), "{err}");
    }
}

#[test]
fn merged_copies_codes_as_filing_the_kept_rows_would() {
    let dim = 32;
    let metric = Metric::L2;
    let data = clustered(9000, dim, 40, 3);
    let (train, rest) = data.split_at(3000 * dim);
    let (a, b) = rest.split_at(3000 * dim);
    for codec in EVERY_CODEC {
        let params = IvfParams {
            nlist: 64,
            codec,
            rerank: 8,
            ..Default::default()
        };
        let donor = IvfIndex::build(view(train, dim, metric), params).unwrap();
        let (ia, ib) = (
            donor.build_like(view(a, dim, metric)).unwrap(),
            donor.build_like(view(b, dim, metric)).unwrap(),
        );
        // Every third row of `a` and every fifth of `b` dropped; the rest in order.
        let keep_a = |r: usize| !r.is_multiple_of(3);
        let keep_b = |r: usize| !r.is_multiple_of(5);
        let mut kept = Vec::new();
        let mut next = 0u32;
        let mut map = |keep: &dyn Fn(usize) -> bool, rows: &[f32]| -> Vec<u32> {
            (0..rows.len() / dim)
                .map(|r| {
                    if !keep(r) {
                        return u32::MAX;
                    }
                    kept.extend_from_slice(&rows[r * dim..(r + 1) * dim]);
                    next += 1;
                    next - 1
                })
                .collect()
        };
        let (map_a, map_b) = (map(&keep_a, a), map(&keep_b, b));
        let total = next as usize;
        let merged = IvfIndex::merged(&[(&ia, &map_a), (&ib, &map_b)], total);
        if matches!(codec, IvfCodec::Pq4 { .. }) {
            let err = merged.unwrap_err();
            assert!(err.contains("pq4"), "{err}");
            continue;
        }
        let merged = merged.unwrap();
        let filed = donor.build_like(view(&kept, dim, metric)).unwrap();
        // Byte for byte but the fit at the end (the rows' error is averaged over the
        // parts, so it may differ in the last bits; checked below).
        let (m, f) = (merged.to_bytes(), filed.to_bytes());
        assert_eq!(m[..m.len() - 16], f[..f.len() - 16], "{codec:?}");
        // The fit is carried: rows' error from the parts, training error from the donor.
        let fit = merged.fit();
        assert_eq!(fit.trained_error, donor.fit().trained_error);
        let (merged_error, filed_error) =
            (fit.rows_error.unwrap(), filed.fit().rows_error.unwrap());
        assert!(
            (merged_error / filed_error - 1.0).abs() < 0.05,
            "{merged_error} vs {filed_error}"
        );
        assert!(fit.drift().unwrap() < 1.5);
    }
    // Refusals: other quantisers, a map of the wrong length, a row given twice or missing.
    let params = IvfParams {
        nlist: 16,
        codec: IvfCodec::Pq { m: 8 },
        ..Default::default()
    };
    let x = IvfIndex::build(view(a, dim, metric), params).unwrap();
    let y = IvfIndex::build(view(b, dim, metric), params).unwrap();
    let all: Vec<u32> = (0..3000).collect();
    let err = IvfIndex::merged(&[(&x, &all), (&y, &all)], 6000).unwrap_err();
    assert!(err.contains("quantisers"), "{err}");
    let err = IvfIndex::merged(&[(&x, &all[..10])], 10).unwrap_err();
    assert!(err.contains("map of 10"), "{err}");
    let err = IvfIndex::merged(&[(&x, &all), (&x, &all)], 6000).unwrap_err();
    assert!(err.contains("twice"), "{err}");
    let err = IvfIndex::merged(&[(&x, &all)], 3001).unwrap_err();
    assert!(err.contains("3000 of 3001"), "{err}");
    assert!(IvfIndex::merged(&[], 0).is_err());
    // Read back from a file, the fit is the same.
    let read = IvfIndex::from_bytes(&x.to_bytes()).unwrap();
    assert_eq!(read.fit(), x.fit());
    assert_eq!(read.fit().drift(), x.fit().drift());
}

/// SQ8 lists under inner products are scored in blocks by the batched kernel (integer
/// products where the CPU has them): without re-rank, the order they give is still close
/// to the exact one, lists longer than a block and ragged last blocks included, and each
/// returned distance is the candidate's exact distance to within the quantisation error
/// (L2 without re-rank: each row decoded in `f32`).
#[test]
fn sq8_lists_rank_like_exact_scores_without_rerank() {
    let dim = 48;
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let data = prepared(clustered(5000, dim, 12, 21), dim, metric);
        let queries = prepared(clustered(40, dim, 12, 22), dim, metric);
        let v = view(&data, dim, metric);
        let index = sq8_index(v, 0);
        assert!(
            index.list_sizes().iter().any(|&n| n > 64 && n % 64 != 0),
            "the lists must span blocks"
        );
        let r = recall(&index, v, &queries, 10, 12, None);
        assert!(r >= 0.9, "{metric}: recall without re-rank {r}");
        for q in queries.chunks_exact(dim) {
            let params = SearchParams {
                nprobe: Some(12),
                ..Default::default()
            };
            for hit in index.search(v, q, 10, None, &params) {
                let exact = metric.distance(q, v.row(hit.key as usize));
                assert!(
                    (hit.distance - exact).abs() <= 0.05 * exact.abs().max(1.0),
                    "{metric}: row {} scored {} against exact {exact}",
                    hit.key,
                    hit.distance
                );
            }
        }
    }
}

/// SQ8 under L2 with re-rank scores candidates through the batched kernel with code norms
/// made by `prepare_search` (or the first search): with a pool of only `k` (re-rank 1) the candidates it picks are
/// still the true neighbours, in memory and after a round trip through bytes.
#[test]
fn sq8_l2_candidates_from_the_batched_kernel_are_the_true_neighbours() {
    let dim = 48;
    let data = clustered(5000, dim, 12, 23);
    let queries = clustered(40, dim, 12, 24);
    let v = view(&data, dim, Metric::L2);
    let index = sq8_index(v, 1);
    let before = index.memory_bytes();
    index.prepare_search();
    assert_eq!(
        index.memory_bytes(),
        before + 5000 * 4,
        "the norms are counted"
    );
    let r = recall(&index, v, &queries, 10, 12, None);
    assert!(r >= 0.9, "recall with re-rank 1: {r}");
    let back = IvfIndex::from_bytes(&index.to_bytes()).unwrap();
    assert_eq!(recall(&back, v, &queries, 10, 12, None), r);
}

fn sq8_index(v: VectorView<'_>, rerank: usize) -> IvfIndex {
    IvfIndex::build(
        v,
        IvfParams {
            nlist: 12,
            codec: IvfCodec::Sq8,
            rerank,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Indexes built with the same quantisers and searched as a group find what searching
/// each on its own finds (keys offset by each part's first row), for every codec and
/// metric, with per-part filters applied and the lists split across two scans; an index
/// trained apart has other quantisers.
#[test]
fn a_group_of_parts_searches_like_its_parts_one_by_one() {
    let dim = 32;
    let cuts = [0usize, 1500, 2800, 4000];
    for metric in [Metric::L2, Metric::Cosine] {
        let data = prepared(clustered(4000, dim, 16, 41), dim, metric);
        let queries = prepared(clustered(25, dim, 16, 42), dim, metric);
        let all = view(&data, dim, metric);
        for codec in EVERY_CODEC {
            let trained = IvfIndex::build(
                all,
                IvfParams {
                    nlist: 24,
                    codec,
                    rerank: 3,
                    ..Default::default()
                },
            )
            .unwrap();
            let views: Vec<VectorView<'_>> = cuts
                .windows(2)
                .map(|w| view(&data[w[0] * dim..w[1] * dim], dim, metric))
                .collect();
            let indexes: Vec<IvfIndex> = views
                .iter()
                .map(|v| trained.build_like(*v).unwrap())
                .collect();
            assert!(indexes
                .iter()
                .all(|i| i.quantisers_id() == trained.quantisers_id()));
            let odd = |row: u32| row % 2 == 1;
            for (filtered, rerank) in [(false, 3), (true, 3), (false, 0)] {
                let filter = filtered.then_some(&odd as RowFilter<'_>);
                let parts: Vec<GroupPart<'_>> = indexes
                    .iter()
                    .zip(&views)
                    .zip(&cuts)
                    .map(|((index, &vectors), &start)| GroupPart {
                        index,
                        vectors,
                        filter,
                        key_base: start as u64,
                    })
                    .collect();
                let params = SearchParams {
                    nprobe: Some(5),
                    rerank: Some(rerank),
                    ..Default::default()
                };
                for q in queries.chunks_exact(dim) {
                    // Each part on its own, merged.
                    let mut expected = TopK::new(10);
                    for part in &parts {
                        for hit in part.index.search(part.vectors, q, 10, filter, &params) {
                            expected.push(part.key_base + hit.key, hit.distance);
                        }
                    }
                    let expected = expected.into_sorted_vec();
                    let lists = indexes[1].probe_lists(q, &params);
                    assert_eq!(lists.len(), 5);
                    let size = indexes[0].group_pool(10, &params);
                    let fresh = || -> Vec<TopK> { parts.iter().map(|_| TopK::new(size)).collect() };
                    let (mut a, mut b) = (fresh(), fresh());
                    indexes[2].scan_group(&parts, q, &lists[..2], &params, &mut a);
                    indexes[0].scan_group(&parts, q, &lists[2..], &params, &mut b);
                    let candidates = a
                        .into_iter()
                        .zip(b)
                        .flat_map(|(mut x, y)| {
                            x.merge(y);
                            x.into_sorted_vec()
                        })
                        .collect();
                    let got = indexes[0].rerank_group(&parts, q, candidates, 10, &params);
                    let keys = |hits: &[Neighbor]| {
                        let mut k: Vec<u64> = hits.iter().map(|n| n.key).collect();
                        k.sort_unstable();
                        k
                    };
                    assert_eq!(keys(&got), keys(&expected), "{metric} {codec:?} {rerank}");
                    for (g, e) in got.iter().zip(&expected) {
                        assert!(
                            (g.distance - e.distance).abs() <= 1e-4 * e.distance.abs().max(1.0)
                        );
                    }
                    if filtered {
                        assert!(got.iter().all(|n| n.key % 2 == 1));
                    }
                }
            }
            let apart = IvfIndex::build(
                views[0],
                IvfParams {
                    nlist: 24,
                    codec,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_ne!(apart.quantisers_id(), trained.quantisers_id());
        }
    }
}

/// Rows already filed with the quantisers keep their lists: an index built from the
/// lists `assign_lists` gave (some rows left to assign, some past the end) is the index
/// `build_like` makes, byte for byte up to the fit's rounding.
#[test]
fn build_like_listed_files_rows_as_build_like_does() {
    let dim = 16;
    let data = clustered(3000, dim, 12, 51);
    let v = view(&data, dim, Metric::L2);
    for codec in [IvfCodec::Pq { m: 4 }, IvfCodec::Sq8, IvfCodec::Pq4 { m: 8 }] {
        let trained = IvfIndex::build(
            v,
            IvfParams {
                nlist: 20,
                codec,
                ..Default::default()
            },
        )
        .unwrap();
        let other = clustered(2000, dim, 12, 52);
        let w = view(&other, dim, Metric::L2);
        let mut lists = trained.assign_lists(&other);
        for row in (0..lists.len()).step_by(7) {
            lists[row] = u32::MAX;
        }
        lists.truncate(1900);
        let listed = trained.build_like_listed(w, &lists).unwrap();
        let alike = trained.build_like(w).unwrap();
        let (a, b) = (listed.to_bytes(), alike.to_bytes());
        assert_eq!(a.len(), b.len());
        // The fit (two floats and a count) closes the bytes.
        assert_eq!(a[..a.len() - 16], b[..b.len() - 16], "{codec:?}");
        let (x, y) = (listed.fit(), alike.fit());
        assert!(
            (x.rows_error.unwrap() - y.rows_error.unwrap()).abs() <= 1e-3 * y.rows_error.unwrap()
        );
        assert!(trained
            .build_like_listed(view(&other[..dim * 10], dim, Metric::Dot), &[])
            .is_err());
    }
}
