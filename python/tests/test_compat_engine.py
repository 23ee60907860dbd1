"""paradox.LatentMemoryEngine: the paradoxlf 0.17 behaviour callers rely on."""

import json
import os

import numpy as np
import pytest

import paradox
from paradox import LatentMemoryEngine
from paradox.encoder import IdentityEncoder, RandomEncoder
from paradox.media import SimpleTextEncoder


def reference_query(vectors, target, k, metric="euclidean", weights=None):
    """paradoxlf 0.17's formulas, in float64."""
    v = np.asarray(vectors, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if metric == "euclidean":
            d = np.sqrt((((v - t) ** 2) * w).sum(1))
        else:
            v, t = v * np.sqrt(w), t * np.sqrt(w)
    if weights is None and metric == "euclidean":
        d = np.linalg.norm(v - t, axis=1)
    if metric == "cosine":
        nv = np.linalg.norm(v, axis=1)
        nv[nv == 0] = 1e-9
        nt = np.linalg.norm(t) or 1e-9
        d = 1 - (v @ t) / (nv * nt)
    order = np.argsort(d, kind="stable")[:k]
    return order, d[order]


@pytest.fixture
def filled(rng):
    engine = LatentMemoryEngine(dimension=16)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    for i, v in enumerate(vectors):
        assert engine.add(v, {"i": i}) == i
    return engine, vectors


def test_defaults_and_attributes():
    engine = LatentMemoryEngine()
    assert engine.dimension == 128 and engine.count == 0
    assert engine.vectors.shape == (0, 128) and engine.vectors.dtype == np.float32
    assert engine.objects == {} and engine.encoder is None
    assert engine.backend_type == "numpy"
    assert engine.query(np.zeros(128), k=3) == []


def test_add_assigns_ids_in_order_and_sets_id_attribute():
    engine = LatentMemoryEngine(dimension=3)
    attrs = {"name": "first"}
    assert engine.add([1, 0, 0], attrs) == 0
    assert attrs["_id"] == 0  # the caller's dict is stored and updated, as in 0.17
    assert engine.add(np.array([0, 1, 0])) == 1
    assert engine.retrieve(0) is attrs
    assert engine.retrieve(1) == {"_id": 1}
    assert engine.retrieve(7) is None
    assert engine.count == 2 and engine.vectors.shape == (2, 3)
    np.testing.assert_array_equal(engine.vectors[1], [0, 1, 0])


def test_add_rejects_wrong_dimension_with_0_17_message():
    engine = LatentMemoryEngine(dimension=3)
    with pytest.raises(ValueError, match="Vector dimension mismatch. Expected 3, got 2"):
        engine.add([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        engine.add([1.0, float("nan"), 0.0])
    assert engine.count == 0


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_query_matches_0_17_formulas(filled, rng, metric):
    engine, vectors = filled
    for _ in range(10):
        target = rng.standard_normal(16)
        hits = engine.query(target, k=7, metric=metric)
        want_ids, want_d = reference_query(vectors, target, 7, metric)
        assert [h[0] for h in hits] == want_ids.tolist()
        np.testing.assert_allclose([h[1] for h in hits], want_d, rtol=1e-4, atol=1e-5)
        assert all(h[2] == {"i": h[0], "_id": h[0]} for h in hits)
        assert all(isinstance(h[0], int) and isinstance(h[1], float) for h in hits)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_weighted_query_matches_0_17_formulas(filled, rng, metric):
    engine, vectors = filled
    weights = rng.random(16)
    target = rng.standard_normal(16)
    hits = engine.query(target, k=5, metric=metric, weights=weights)
    want_ids, want_d = reference_query(vectors, target, 5, metric, weights)
    assert [h[0] for h in hits] == want_ids.tolist()
    np.testing.assert_allclose([h[1] for h in hits], want_d, rtol=1e-4, atol=1e-5)


def test_cosine_with_zero_vectors_gives_distance_one():
    engine = LatentMemoryEngine(dimension=2)
    engine.add([0.0, 0.0])
    engine.add([1.0, 0.0])
    hits = engine.query([1.0, 0.0], k=2, metric="cosine")
    assert [h[0] for h in hits] == [1, 0]
    assert hits[0][1] == pytest.approx(0.0, abs=1e-6) and hits[1][1] == pytest.approx(1.0)


def test_k_larger_than_count_returns_everything(filled):
    engine, _ = filled
    assert len(engine.query(np.zeros(16), k=1000)) == 300
    assert engine.query(np.zeros(16), k=0) == []
    with pytest.raises(ValueError, match="Unknown metric"):
        engine.query(np.zeros(16), metric="manhattan")


def test_query_sees_adds_made_after_a_query(filled, rng):
    engine, _ = filled
    engine.query(np.zeros(16), k=1)
    new = rng.standard_normal(16) * 100
    new_id = engine.add(new)
    assert engine.query(new, k=1)[0][0] == new_id
    assert engine.query(new, k=1, metric="cosine")[0][0] == new_id


def test_in_place_vector_edits_reach_the_index(filled):
    engine, vectors = filled
    target = np.full(16, 50.0, dtype=np.float32)
    engine.query(target, k=1, metric="cosine")  # builds the cosine collection too
    engine.vectors[42] = target  # element write through the view
    assert engine.query(target, k=1)[0][0] == 42
    assert engine.query(target, k=1, metric="cosine")[0][0] == 42
    kept = engine.vectors
    engine.query(target, k=1)
    kept[7] = target * 2  # a write through a reference kept across queries
    assert engine.query(target * 2, k=1)[0][0] == 7
    del kept
    engine.vectors += 1.0  # the SimulationEnv pattern
    assert engine.query(target + 1.0, k=1)[0][0] == 42
    np.testing.assert_allclose(engine.vectors[0], vectors[0] + 1.0)
    np.testing.assert_allclose(engine.vectors[7], target * 2 + 1.0)


def test_k_beyond_engine_limit_falls_back_exactly(rng):
    engine = LatentMemoryEngine(dimension=2)
    for v in rng.standard_normal((10_050, 2)):
        engine.add(v)
    hits = engine.query([0.0, 0.0], k=10_020)
    assert len(hits) == 10_020
    assert all(a[1] <= b[1] for a, b in zip(hits, hits[1:]))


def test_encoder_and_conceptual_search():
    engine = LatentMemoryEngine(dimension=64)
    engine.set_encoder(SimpleTextEncoder(dimension=64))
    for word in ["apple", "banana", "cherry"]:
        engine.add(word, {"word": word})
    hits = engine.conceptual_search("banana", k=1)
    assert hits[0][2]["word"] == "banana" and hits[0][1] == pytest.approx(0.0, abs=1e-5)
    bare = LatentMemoryEngine(dimension=4)
    with pytest.raises(ValueError, match="Encoder required"):
        bare.conceptual_search("text")
    bare.add([1, 0, 0, 0])
    assert bare.conceptual_search([1, 0, 0, 0], k=1)[0][0] == 0
    identity = LatentMemoryEngine(dimension=2)
    identity.set_encoder(IdentityEncoder(2))
    assert identity.add([3, 4]) == 0
    assert RandomEncoder(5).encode("x").shape == (5,)
    identity.set_decoder("decoder")
    assert identity.decoder == "decoder"


def test_imagine_accepts_lists_and_arrays():
    engine = LatentMemoryEngine(dimension=2)
    np.testing.assert_allclose(engine.imagine([0.0, 0.0], [1.0, 2.0], ratio=0.25), [0.25, 0.5])
    np.testing.assert_allclose(engine.imagine(np.zeros(2), np.ones(2)), [0.5, 0.5])


def test_predict_future():
    engine = LatentMemoryEngine(dimension=2)
    future = engine.predict_future([[0, 0], [1, 1], [2, 2]], steps=2)
    np.testing.assert_allclose(future, [[3, 3], [4, 4]])


def test_get_info_keys():
    info = LatentMemoryEngine(dimension=4).get_info()
    assert {"backend", "object_count", "dimension", "resources"} <= set(info)
    assert info["object_count"] == 0 and info["dimension"] == 4
    assert {"cpu_count", "total_ram", "available_ram", "gpu_available", "gpu_name"} <= set(info["resources"])


def write_0_17_dir(path, vectors, objects):
    """What paradoxlf 0.17's save() leaves behind: json.dump(objects) + a raw float32 memmap."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "metadata.json"), "w") as f:
        json.dump(objects, f)
    fp = np.memmap(os.path.join(path, "vectors.dat"), dtype="float32", mode="w+", shape=vectors.shape)
    fp[:] = vectors[:]
    fp.flush()


def test_opens_a_0_17_storage_dir(tmp_path, rng):
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    objects = {i: {"label": f"v{i}", "_id": i} for i in range(50)}
    write_0_17_dir(str(tmp_path), vectors, objects)
    engine = LatentMemoryEngine(dimension=8, storage_dir=str(tmp_path))
    assert engine.count == 50
    assert engine.retrieve(7) == {"label": "v7", "_id": 7}
    np.testing.assert_array_equal(engine.vectors, vectors)
    assert engine.query(vectors[13], k=1)[0][:1] == (13,)
    assert engine.add(np.zeros(8)) == 50


def test_save_round_trip_in_0_17_format(tmp_path, rng):
    engine = LatentMemoryEngine(dimension=4, storage_dir=str(tmp_path))
    vectors = rng.standard_normal((10, 4)).astype(np.float32)
    for v in vectors:
        engine.add(v, {"tag": "x"})
    engine.save()
    raw = np.fromfile(tmp_path / "vectors.dat", dtype=np.float32).reshape(10, 4)
    np.testing.assert_array_equal(raw, vectors)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["3"] == {"tag": "x", "_id": 3}
    again = LatentMemoryEngine(dimension=4, storage_dir=str(tmp_path))
    assert again.count == 10 and again.retrieve(3) == {"tag": "x", "_id": 3}
    assert again.query(vectors[3], k=1)[0][0] == 3


def test_saving_an_empty_engine_works(tmp_path):
    engine = LatentMemoryEngine(dimension=4, storage_dir=str(tmp_path))
    engine.save()  # 0.17 crashed: cannot mmap an empty file
    again = LatentMemoryEngine(dimension=4, storage_dir=str(tmp_path))
    assert again.count == 0 and again.vectors.shape == (0, 4)


def test_wrong_dimension_for_a_storage_dir_is_refused(tmp_path, rng):
    write_0_17_dir(str(tmp_path), rng.standard_normal((5, 8)).astype(np.float32), {i: {"_id": i} for i in range(5)})
    with pytest.raises(ValueError, match="wrong dimension"):
        LatentMemoryEngine(dimension=4, storage_dir=str(tmp_path))


def test_save_without_storage_dir_only_warns(caplog):
    LatentMemoryEngine(dimension=2).save()
    assert "Cannot save" in caplog.text


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        LatentMemoryEngine(dimension=0)
    with pytest.raises(ValueError):
        LatentMemoryEngine(dimension=4, backend="cupy")
    assert LatentMemoryEngine(dimension=4, backend="torch").backend_type == "numpy"


def test_top_level_exports_are_the_union_of_0_12_to_0_17():
    for name in [
        "LatentMemoryEngine",
        "SimulationEnv",
        "LatentVisualizer",
        "ParadoxMixer",
        "GeneticOptimizer",
        "AutoAgent",
        "GuardRail",
        "encoder",
        "decoder",
        "visualization",
        "__version__",
    ]:
        assert hasattr(paradox, name), name
        assert name in paradox.__all__


def test_engines_pickle_like_0_17(filled):
    import pickle

    engine, vectors = filled
    copy = pickle.loads(pickle.dumps(engine))
    assert copy.count == 300 and copy.retrieve(5) == {"i": 5, "_id": 5}
    np.testing.assert_array_equal(copy.vectors, vectors)
    assert copy.query(vectors[9], k=1)[0][0] == 9
    assert copy.add(np.zeros(16)) == 300
