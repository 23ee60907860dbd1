"""The native API: paradox.Engine and paradox.Collection."""

import threading
import time

import numpy as np
import pytest

import paradox


def exact_l2(base, queries, k):
    d = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def test_create_upsert_search_l2_matches_numpy(engine, rng):
    base = rng.standard_normal((500, 16)).astype(np.float32)
    docs = engine.create_collection("docs", 16, "l2", index="flat")
    assert docs.upsert(np.arange(500), base) == 500
    assert docs.count() == 500 and len(docs) == 500
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    ids, scores = docs.search(queries, k=5)
    assert ids.shape == (20, 5) and scores.shape == (20, 5)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    want_ids, want_scores = exact_l2(base, queries, 5)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-4)


def test_single_query_is_1d(engine, rng):
    base = rng.standard_normal((50, 8)).astype(np.float32)
    docs = engine.create_collection("docs", 8, "l2")
    docs.upsert(list(range(50)), base)
    ids, scores = docs.search(base[3], k=4)
    assert ids.shape == (4,) and scores.shape == (4,)
    assert ids[0] == 3 and scores[0] == pytest.approx(0.0, abs=1e-5)
    assert np.all(np.diff(scores) >= 0)


def test_cosine_scores_are_similarities(engine):
    docs = engine.create_collection("docs", 2, "cosine")
    docs.upsert([1, 2], np.array([[1, 0], [0, 1]], dtype=np.float32))
    ids, scores = docs.search(np.array([2.0, 0.0], dtype=np.float32), k=2)
    assert list(ids) == [1, 2]
    np.testing.assert_allclose(scores, [1.0, 0.0], atol=1e-6)


def test_float64_and_lists_are_converted(engine):
    docs = engine.create_collection("docs", 3, "l2")
    docs.upsert([1, 2], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    ids, _ = docs.search(np.array([0.9, 0.0, 0.1], dtype=np.float64), k=1)
    assert list(ids) == [2]
    ids, _ = docs.search([[0.0, 0.1, 0.9]], k=1)
    assert ids.shape == (1, 1) and ids[0, 0] == 1
    # Strided (non-contiguous) float32 views are accepted too.
    wide = np.zeros((2, 6), dtype=np.float32)
    wide[:, ::2] = [[1, 0, 0], [0, 0, 1]]
    ids, _ = docs.search(wide[:, ::2], k=1)
    assert ids[:, 0].tolist() == [2, 1]


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 2, 3), dtype=np.float32), "1-D or 2-D"),
        (np.array([1.0, np.nan, 0.0], dtype=np.float32), "NaN"),
        (np.array([1.0, np.inf, 0.0]), "NaN"),
        (np.array(["a", "b", "c"]), "dtype"),
        (np.array([1 + 1j, 0, 0]), "dtype"),
        ([[1.0, 2.0], [1.0]], "queries"),
        (np.zeros(4, dtype=np.float32), "dimension mismatch"),
    ],
)
def test_bad_queries_raise_value_error(engine, bad, message):
    docs = engine.create_collection("docs", 3, "l2")
    docs.upsert([1], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=message):
        docs.search(bad, k=1)


def test_bad_upserts_raise_value_error(engine):
    docs = engine.create_collection("docs", 3, "l2")
    with pytest.raises(ValueError, match="2 ids but 1 vectors"):
        docs.upsert([1, 2], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        docs.upsert([1], np.array([[1, np.nan, 0]], dtype=np.float32))
    with pytest.raises(ValueError, match="non-negative"):
        docs.upsert(np.array([-1]), np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="duplicate id"):
        docs.upsert([5, 5], np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="payload"):
        docs.upsert([1], np.ones((1, 3), dtype=np.float32), payloads=[[1, 2]])
    with pytest.raises(ValueError, match="k"):
        docs.search(np.ones(3, dtype=np.float32), k=0)
    assert docs.count() == 0


def test_payloads_filters_and_with_payload(engine, rng):
    docs = engine.create_collection("docs", 4, "l2", index="flat")
    vectors = rng.standard_normal((100, 4)).astype(np.float32)
    payloads = [{"lang": "en" if i % 2 else "fr", "year": 2000 + i, "tags": ["a"]} for i in range(100)]
    docs.upsert(np.arange(100), vectors, payloads)
    ids, scores, hits = docs.search(vectors[10], k=5, filter={"key": "lang", "eq": "fr"}, with_payload=True)
    assert all(i % 2 == 0 for i in ids)
    assert [h["lang"] for h in hits] == ["fr"] * 5
    assert hits[0] == payloads[10]
    json_filter = '{"and": [{"key": "lang", "eq": "en"}, {"key": "year", "range": {"gte": 2090}}]}'
    assert docs.count(filter=json_filter) == 5
    ids, _ = docs.search(vectors[:3], k=200, filter=json_filter)
    assert ids.shape == (3, 200)
    assert sorted(ids[0][ids[0] >= 0].tolist()) == [91, 93, 95, 97, 99]
    assert (ids[:, 5:] == -1).all()
    with pytest.raises(ValueError, match="filter"):
        docs.search(vectors[0], k=1, filter={"key": "lang", "bogus": 1})


def test_padding_scores_are_nan(engine):
    docs = engine.create_collection("docs", 2, "l2")
    docs.upsert([1, 2], np.eye(2, dtype=np.float32))
    ids, scores = docs.search(np.eye(2, dtype=np.float32), k=4)
    assert ids.shape == (2, 4)
    assert (ids[:, 2:] == -1).all() and np.isnan(scores[:, 2:]).all()


def test_string_ids(engine):
    docs = engine.create_collection("docs", 2, "l2")
    docs.upsert(["a", "b"], np.eye(2, dtype=np.float32))
    ids, _ = docs.search(np.array([1.0, 0.0], dtype=np.float32), k=2)
    assert ids.dtype == object and ids.tolist() == ["a", "b"]
    assert docs.get("b")["id"] == "b"


def test_get_delete_count(engine):
    docs = engine.create_collection("docs", 2, "l2")
    docs.upsert([1, 2, 3], np.eye(3, 2, dtype=np.float32), [{"n": 1}, None, {"n": 3}])
    one = docs.get(1)
    assert one["id"] == 1 and one["payload"] == {"n": 1}
    np.testing.assert_array_equal(one["vector"], [1.0, 0.0])
    got = docs.get([3, 99])
    assert got[0]["payload"] == {"n": 3} and got[1] is None
    assert docs.delete([1, 99]) == 1
    assert docs.count() == 2 and docs.get(1) is None
    assert docs.delete(filter={"key": "n", "eq": 3}) == 1
    assert docs.count() == 1
    with pytest.raises(ValueError):
        docs.delete()


def test_scroll_iterates_in_id_order(engine, rng):
    docs = engine.create_collection("docs", 3, "l2")
    docs.upsert(
        np.arange(1000)[::-1].copy(),
        rng.standard_normal((1000, 3)).astype(np.float32),
        [{"even": i % 2 == 0} for i in range(1000)[::-1]],
    )
    seen = [p["id"] for p in docs.scroll(batch_size=64)]
    assert seen == list(range(1000))
    evens = list(docs.scroll(filter={"key": "even", "eq": True}, with_vector=True))
    assert len(evens) == 500 and evens[0]["vector"].shape == (3,)


def test_reopen_snapshot_restore(tmp_path, rng):
    path = str(tmp_path / "data")
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    engine = paradox.Engine(path)
    docs = engine.create_collection("docs", 8, "cosine", index={"kind": "hnsw", "m": 8})
    docs.upsert(np.arange(200), vectors)
    info = docs.snapshot(str(tmp_path / "docs.snap"))
    assert info["points"] == 200 and info["collection"] == "docs"
    del docs, engine
    engine = paradox.Engine(path)
    assert engine.list_collections() == ["docs"] and "docs" in engine
    assert engine["docs"].count() == 200
    copy = engine.restore(str(tmp_path / "docs.snap"), name="copy")
    assert copy.count() == 200 and copy.metric == "cosine" and copy.dim == 8
    assert copy.info()["index"]["kind"] == "hnsw"
    with pytest.raises(KeyError):
        engine.collection("missing")
    with pytest.raises(ValueError, match="already exists"):
        engine.create_collection("docs", 8)
    engine.drop_collection("copy")
    assert engine.list_collections() == ["docs"]


def test_second_engine_on_same_directory_is_refused(tmp_path):
    path = str(tmp_path / "data")
    first = paradox.Engine(path)
    with pytest.raises(paradox.ParadoxError, match="locked"):
        paradox.Engine(path)
    del first


def test_bad_engine_arguments(tmp_path, engine):
    with pytest.raises(ValueError, match="fsync"):
        paradox.Engine(str(tmp_path / "x"), fsync="sometimes")
    with pytest.raises(ValueError, match="metric"):
        engine.create_collection("a", 3, "manhattan")
    with pytest.raises(ValueError, match="index"):
        engine.create_collection("a", 3, index="ivf")
    with pytest.raises(ValueError, match="dimension"):
        engine.create_collection("a", 0)
    with pytest.raises(ValueError, match="params"):
        c = engine.create_collection("b", 3)
        c.upsert([1], np.ones((1, 3), dtype=np.float32))
        c.search(np.ones(3, dtype=np.float32), params={"eff": 3})


def test_params_exact_and_ef(engine, rng):
    docs = engine.create_collection("docs", 8, "l2", index="hnsw")
    base = rng.standard_normal((300, 8)).astype(np.float32)
    docs.upsert(np.arange(300), base)
    want, _ = exact_l2(base, base[:5], 3)
    ids, _ = docs.search(base[:5], k=3, params={"exact": True})
    np.testing.assert_array_equal(ids, want)
    ids, _ = docs.search(base[:5], k=3, params={"ef": 100})
    assert ids.shape == (5, 3)


def test_search_releases_the_gil(engine, rng):
    """A Python thread keeps running while a long batch search runs natively."""
    docs = engine.create_collection("docs", 64, "l2", index="flat")
    docs.upsert(np.arange(20_000), rng.standard_normal((20_000, 64)).astype(np.float32))
    queries = rng.standard_normal((2_000, 64)).astype(np.float32)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.01)
    start = time.perf_counter()
    for _ in range(3):
        docs.search(queries, k=10)
    elapsed = time.perf_counter() - start
    done.set()
    thread.join()
    during = [t for t in ticks if start <= t <= start + elapsed]
    # With the GIL held the ticker could not run at all during the searches.
    assert elapsed < 0.05 or len(during) >= 3, (elapsed, len(during))


def test_native_exports():
    assert paradox.Engine is paradox._native.Engine
    assert issubclass(paradox.ParadoxError, Exception)


def test_sealed_segments_with_hnsw_graphs(tmp_path, rng):
    engine = paradox.Engine(str(tmp_path / "data"), fsync="never", seal_threshold=1000)
    docs = engine.create_collection("docs", 16, "l2", index={"kind": "hnsw", "m": 8, "ef_construction": 64})
    base = rng.standard_normal((3500, 16)).astype(np.float32)
    for start in range(0, 3500, 500):
        docs.upsert(np.arange(start, start + 500), base[start : start + 500])
    docs.wait_for_indexes()
    info = docs.info()
    # Several sealed segments (how many depends on when the background worker seals and
    # merges), each searched through its graph.
    assert info["sealed_segments"] >= 2 and info["points"] == 3500
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    want, _ = exact_l2(base, queries, 10)
    ids, _ = docs.search(queries, k=10, params={"ef": 200})
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, want)])
    assert recall >= 0.9
    exact, _ = docs.search(queries, k=10, params={"exact": True})
    np.testing.assert_array_equal(exact, want)
