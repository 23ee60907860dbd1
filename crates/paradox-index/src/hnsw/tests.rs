use super::*;
use crate::testdata::clustered;
use crate::{FlatIndex, VectorIndex, VectorView};
use paradox_kernels::Metric;

fn recall(
    index: &HnswIndex,
    view: VectorView<'_>,
    queries: &[f32],
    k: usize,
    ef: usize,
    skip: impl Fn(u32) -> bool + Sync,
) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    let allow = |r: u32| !skip(r);
    for q in queries.chunks_exact(view.dim) {
        let truth = FlatIndex.search(view, q, k, Some(&allow), &SearchParams::default());
        let got = index.search(
            view,
            q,
            k,
            None,
            &SearchParams {
                ef: Some(ef),
                nprobe: None,
                ..Default::default()
            },
        );
        assert!(
            got.iter().all(|n| !skip(n.key as u32)),
            "a deleted row was returned"
        );
        let truth_keys: Vec<u64> = truth.iter().map(|n| n.key).collect();
        hit += got.iter().filter(|n| truth_keys.contains(&n.key)).count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

/// Clustered rows and queries (`(count, seed)` each) over `clusters` centres, unit length
/// unless the metric is L2: inner product is searched on unit vectors, as real embeddings
/// are; maximum inner product search over unnormalised data is a different (harder) problem.
fn prepared(
    metric: Metric,
    dim: usize,
    rows: (usize, u64),
    queries: (usize, u64),
    clusters: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut data = clustered(rows.0, dim, clusters, rows.1);
    let mut queries = clustered(queries.0, dim, clusters, queries.1);
    if metric != Metric::L2 {
        for v in data
            .chunks_exact_mut(dim)
            .chain(queries.chunks_exact_mut(dim))
        {
            paradox_kernels::normalize(v);
        }
    }
    (data, queries)
}

#[test]
fn recall_is_high_on_clustered_data_for_every_metric() {
    for metric in [Metric::L2, Metric::Dot, Metric::Cosine] {
        let dim = 24;
        let (data, queries) = prepared(metric, dim, (4000, 1), (100, 2), 20);
        let view = VectorView {
            data: &data,
            dim,
            metric,
        };
        let index = HnswIndex::build(
            view,
            HnswParams {
                m: 12,
                ef_construction: 100,
                ..Default::default()
            },
        );
        let r = recall(&index, view, &queries, 10, 64, |_| false);
        assert!(r > 0.95, "{metric}: recall {r}");
        assert!(index.degrees().iter().all(|&d| d > 0 && d <= 24));
    }
}

#[test]
fn incremental_insert_matches_batch_build_quality() {
    let dim = 16;
    let data = clustered(2000, dim, 10, 3);
    let queries = clustered(50, dim, 10, 4);
    let mut index = HnswIndex::build(
        VectorView {
            data: &data[..0],
            dim,
            metric: Metric::L2,
        },
        HnswParams::default(),
    );
    for i in 1..=2000 {
        index.insert(VectorView {
            data: &data[..i * dim],
            dim,
            metric: Metric::L2,
        });
    }
    let view = VectorView {
        data: &data,
        dim,
        metric: Metric::L2,
    };
    let r = recall(&index, view, &queries, 10, 64, |_| false);
    assert!(r > 0.95, "recall {r}");
}

#[test]
fn delete_then_repair_removes_every_link_to_deleted_nodes_and_keeps_recall() {
    let dim = 16;
    let n = 3000;
    let data = clustered(n, dim, 15, 5);
    let queries = clustered(80, dim, 15, 6);
    let view = VectorView {
        data: &data,
        dim,
        metric: Metric::L2,
    };
    let mut index = HnswIndex::build(
        view,
        HnswParams {
            m: 12,
            ef_construction: 100,
            ..Default::default()
        },
    );
    let is_victim = |r: u32| r % 10 < 3; // 30%
    for r in (0..n as u32).filter(|&r| is_victim(r)) {
        index.delete(r);
    }
    // Tombstoned rows are never returned, even before repair.
    let before = recall(&index, view, &queries, 10, 64, is_victim);
    // The same deleted graph, repaired with a small local beam.
    let mut local = HnswIndex::from_bytes(&index.to_bytes()).unwrap();
    index.repair(view);
    local.repair_with(view, 16);
    for graph in [&index, &local] {
        for r in 0..n as u32 {
            let links = graph.links(r);
            if is_victim(r) {
                assert!(links.is_empty());
            } else {
                assert!(
                    links.iter().all(|&l| !is_victim(l)),
                    "node {r} still links to a deleted node"
                );
            }
        }
    }
    let after = recall(&index, view, &queries, 10, 64, is_victim);
    let local_after = recall(&local, view, &queries, 10, 64, is_victim);
    // Compare with a fresh build over the surviving rows.
    let live: Vec<f32> = (0..n)
        .filter(|&r| !is_victim(r as u32))
        .flat_map(|r| data[r * dim..(r + 1) * dim].to_vec())
        .collect();
    let live_view = VectorView {
        data: &live,
        dim,
        metric: Metric::L2,
    };
    let fresh = HnswIndex::build(
        live_view,
        HnswParams {
            m: 12,
            ef_construction: 100,
            ..Default::default()
        },
    );
    let fresh_recall = recall(&fresh, live_view, &queries, 10, 64, |_| false);
    assert!(
        after + 0.01 >= fresh_recall,
        "after repair {after}, tombstones only {before}, fresh build {fresh_recall}"
    );
    assert!(
        local_after + 0.02 >= fresh_recall,
        "after repair with beam 16 {local_after}, fresh build {fresh_recall}"
    );
}

#[test]
fn compacted_graph_renumbers_the_kept_rows_and_searches_like_a_fresh_build() {
    let dim = 16;
    let n = 3000;
    let data = clustered(n, dim, 15, 8);
    let queries = clustered(80, dim, 15, 9);
    let view = VectorView {
        data: &data,
        dim,
        metric: Metric::L2,
    };
    let params = HnswParams {
        m: 12,
        ef_construction: 100,
        ..Default::default()
    };
    let mut index = HnswIndex::build(view, params);
    // The index's own tombstones go too, with the rows `keep` leaves out.
    index.delete(1);
    let keep = |r: u32| !r.is_multiple_of(5) && r != 1; // 20% dropped, row 1 by its tombstone
    let kept_rows: Vec<usize> = (0..n).filter(|&r| keep(r as u32)).collect();
    let kept: Vec<f32> = kept_rows
        .iter()
        .flat_map(|&r| data[r * dim..(r + 1) * dim].to_vec())
        .collect();
    let kept_view = VectorView {
        data: &kept,
        dim,
        metric: Metric::L2,
    };
    let compacted = index.compacted(view, &|r| keep(r) || r == 1, 32);
    assert_eq!(compacted.len(), kept_rows.len());
    assert_eq!(compacted.deleted_count(), 0);
    let graph = &compacted.graph;
    let mut links = [0u32; graph::MAX_LINKS];
    for node in 0..graph.len() as u32 {
        for level in 0..=graph.levels[node as usize] as usize {
            let count = graph.read_links(node, level, &mut links);
            assert!(
                level > 0 || count > 0,
                "node {node} lost every level-0 link"
            );
            for &l in &links[..count] {
                assert!(
                    l != node && (l as usize) < graph.len(),
                    "node {node}: link {l}"
                );
                assert!(graph.levels[l as usize] as usize >= level);
            }
        }
    }
    let entry = graph.entry.load(Acquire);
    assert_eq!(
        graph.max_level.load(Acquire),
        graph.levels[entry as usize] as u32
    );
    assert_eq!(
        graph.levels[entry as usize],
        *graph.levels.iter().max().unwrap()
    );
    // Row numbers follow the kept rows in order: searching a kept row's vector finds its
    // new number first.
    for (new, &old) in kept_rows.iter().enumerate().step_by(97) {
        let found = compacted.search(
            kept_view,
            &data[old * dim..(old + 1) * dim],
            1,
            None,
            &SearchParams::default(),
        );
        assert_eq!(found[0].key, new as u64, "old row {old}");
    }
    let fresh = HnswIndex::build(kept_view, params);
    let compacted_recall = recall(&compacted, kept_view, &queries, 10, 64, |_| false);
    let fresh_recall = recall(&fresh, kept_view, &queries, 10, 64, |_| false);
    assert!(
        compacted_recall + 0.01 >= fresh_recall,
        "compacted {compacted_recall}, fresh build {fresh_recall}"
    );
    // Nothing kept: an empty graph that answers nothing.
    let none = index.compacted(view, &|_| false, 32);
    assert_eq!(none.len(), 0);
    let empty = VectorView {
        data: &[],
        dim,
        metric: Metric::L2,
    };
    assert!(none
        .search(empty, &queries[..dim], 5, None, &SearchParams::default())
        .is_empty());
}

#[test]
fn filtered_search_returns_only_allowed_rows() {
    let dim = 8;
    let data = clustered(2000, dim, 8, 7);
    let view = VectorView {
        data: &data,
        dim,
        metric: Metric::L2,
    };
    let index = HnswIndex::build(view, HnswParams::default());
    let allow = |r: u32| r.is_multiple_of(7);
    let q = &data[..dim];
    let hits = index.search(
        view,
        q,
        10,
        Some(&allow),
        &SearchParams {
            ef: Some(100),
            nprobe: None,
            ..Default::default()
        },
    );
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|h| h.key % 7 == 0));
    let truth = FlatIndex.search(view, q, 10, Some(&allow), &SearchParams::default());
    let overlap = hits
        .iter()
        .filter(|h| truth.iter().any(|t| t.key == h.key))
        .count();
    assert!(overlap >= 9, "filtered overlap {overlap}");
}

#[test]
fn bytes_round_trip_and_damage_is_an_error() {
    let dim = 8;
    let data = clustered(500, dim, 5, 8);
    let view = VectorView {
        data: &data,
        dim,
        metric: Metric::Dot,
    };
    let mut index = HnswIndex::build(view, HnswParams::default());
    index.delete(3);
    let bytes = index.to_bytes();
    let back = HnswIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    assert!(back.is_deleted(3) && !back.is_deleted(4));
    let q = &data[dim..2 * dim];
    let a = index.search(view, q, 5, None, &SearchParams::default());
    let b = back.search(view, q, 5, None, &SearchParams::default());
    assert_eq!(a, b);
    for cut in [0, 7, 40, bytes.len() / 2, bytes.len() - 1] {
        assert!(HnswIndex::from_bytes(&bytes[..cut]).is_err());
    }
    // A link pointing past the last node is caught.
    let mut bad = bytes.clone();
    let level0_start = 56 + 500;
    bad[level0_start + 4..level0_start + 8].copy_from_slice(&10_000u32.to_le_bytes());
    assert!(HnswIndex::from_bytes(&bad).is_err());
    let empty = HnswIndex::build(
        VectorView {
            data: &[],
            dim,
            metric: Metric::L2,
        },
        HnswParams::default(),
    );
    let e = HnswIndex::from_bytes(&empty.to_bytes()).unwrap();
    assert!(e
        .search(view, q, 5, None, &SearchParams::default())
        .is_empty());
}

#[test]
fn the_unfiltered_beam_finds_what_the_filtered_one_does_when_it_admits_every_node() {
    // `search_all` keeps one sorted array; `search_with` two heaps. With an `accept` that
    // admits every node, they expand the same nodes in the same order and keep the same
    // `ef` results.
    for metric in [Metric::L2, Metric::Dot] {
        let dim = 16;
        let (data, queries) = prepared(metric, dim, (3000, 7), (60, 8), 12);
        let view = VectorView {
            data: &data,
            dim,
            metric,
        };
        let index = HnswIndex::build(view, HnswParams::default());
        let space = Space::new(view);
        for ef in [1, 5, 24, 100] {
            for q in queries.chunks_exact(dim) {
                let dist = space.to(q);
                let pooled = index.search_all(&dist, ef);
                let heaped = index.search_with(&dist, ef, &|_| true);
                assert_eq!(pooled.len(), ef.min(data.len() / dim));
                let keys = |hits: &[Neighbor]| hits.iter().map(|h| h.key).collect::<Vec<_>>();
                assert_eq!(keys(&pooled), keys(&heaped), "{metric:?} ef {ef}");
                assert!(pooled.windows(2).all(|w| w[0].distance <= w[1].distance));
            }
        }
    }
}

/// `bytes` at `skip` bytes into a read-only anonymous mapping (page-aligned), as shared
/// bytes: a store to them would fault.
fn read_only(bytes: &[u8], skip: usize) -> crate::SharedBytes {
    let mut map = memmap2::MmapMut::map_anon(bytes.len() + skip).unwrap();
    map[skip..].copy_from_slice(bytes);
    let map = map.make_read_only().unwrap();
    std::sync::Arc::new(Offset { map, skip })
}

struct Offset {
    map: memmap2::Mmap,
    skip: usize,
}

impl AsRef<[u8]> for Offset {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.skip..]
    }
}

#[test]
fn a_graph_read_in_place_searches_like_a_copy_and_copies_itself_before_changing() {
    let dim = 8;
    let data = clustered(801, dim, 5, 9);
    let all = VectorView {
        data: &data,
        dim,
        metric: Metric::L2,
    };
    let view = VectorView {
        data: &data[..800 * dim],
        dim,
        metric: Metric::L2,
    };
    let index = HnswIndex::build(view, HnswParams::default());
    let bytes = index.to_bytes();
    let shared = read_only(&bytes, 0);
    let mut mapped = HnswIndex::from_shared(shared.clone()).unwrap();
    assert!(mapped.links_in_place());
    assert_eq!(mapped.to_bytes(), bytes);
    // Links in place are the file's pages, not the graph's own memory.
    assert!(mapped.memory_bytes() < index.memory_bytes() / 2);
    for q in data.chunks_exact(dim).step_by(97) {
        let a = index.search(view, q, 10, None, &SearchParams::default());
        let b = mapped.search(view, q, 10, None, &SearchParams::default());
        assert_eq!(a, b);
    }
    // Bytes not 4-aligned in memory decode as a copy, with the same graph.
    let copied = HnswIndex::from_shared(read_only(&bytes, 1)).unwrap();
    assert!(!copied.links_in_place());
    assert_eq!(copied.to_bytes(), bytes);
    // Damage is still an error in place: a link past the last node.
    let mut bad = bytes.clone();
    let level0_start = 56 + 800;
    bad[level0_start + 4..level0_start + 8].copy_from_slice(&10_000u32.to_le_bytes());
    assert!(HnswIndex::from_shared(read_only(&bad, 0)).is_err());
    // And an upper-level link to a node absent from that level.
    let crafted = HnswIndex::from_bytes(&bytes).unwrap();
    let upper = (0..800u32)
        .find(|&r| crafted.graph.levels[r as usize] >= 1)
        .unwrap();
    let ground = (0..800u32)
        .find(|&r| crafted.graph.levels[r as usize] == 0)
        .unwrap();
    crafted.graph.write_links(upper, 1, &[ground]);
    let crafted = crafted.to_bytes();
    for decoded in [
        HnswIndex::from_bytes(&crafted),
        HnswIndex::from_shared(read_only(&crafted, 0)),
    ] {
        let err = decoded.unwrap_err().to_string();
        assert!(err.contains("absent from that level"), "{err}");
    }

    // A store to links read in place is refused (the `&mut self` methods copy first).
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mapped.graph.write_links(0, 0, &[1]);
    }));
    assert!(refused.is_err());
    // Changing the graph copies its links first; the shared bytes stay as they were.
    mapped.delete(5);
    mapped.repair(view);
    assert!(!mapped.links_in_place());
    assert!(mapped.links(0).iter().all(|&l| l != 5));
    mapped.insert(all);
    assert_eq!(mapped.len(), 801);
    assert_eq!((*shared).as_ref(), &bytes[..]);
    let last = &data[800 * dim..];
    let hits = mapped.search(all, last, 1, None, &SearchParams::default());
    assert_eq!(hits[0].key, 800);
}
