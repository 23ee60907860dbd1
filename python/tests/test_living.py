"""paradox.LivingCollection: spaces, adapters, migration, drift and Python encoders."""

import numpy as np
import pytest

import paradox

TOPICS = ["cat", "dog", "stock", "rain", "piano", "football", "bread", "rocket"]


def sentences(n):
    words = ["the", "a", "big", "small", "old", "new", "red", "quiet"]
    return [f"{words[i % 8]} {TOPICS[i % 8]} number {i} {words[(i * 3) % 8]} {TOPICS[(i * 5) % 8]}" for i in range(n)]


def living(engine, dim=64, n=300):
    engine.create_collection("docs", dim, "cosine")
    docs = paradox.LivingCollection.init(engine, "docs", "hash@1", encoder=f"hashing:{dim}", text_field="text")
    texts = sentences(n)
    assert docs.upsert_texts(list(range(n)), texts, [{"n": i} for i in range(n)]) == n
    return docs, texts


def test_text_in_text_search_out(engine):
    docs, texts = living(engine)
    assert docs.default_space == "hash@1"
    assert [s["name"] for s in docs.spaces()] == ["hash@1"]
    assert docs.count("hash@1") == 300
    hits = docs.search(text=texts[17], k=3, with_payload=True)
    assert hits[0]["id"] == 17 and hits[0]["source"] == "native"
    assert hits[0]["payload"]["text"] == texts[17] and hits[0]["payload"]["n"] == 17
    filtered = docs.search(text=texts[17], k=3, filter={"key": "n", "range": {"gte": 100}})
    assert len(filtered) == 3 and all(h["id"] >= 100 for h in filtered)
    vector = docs.encode("hash@1", [texts[5]])
    assert vector.shape == (1, 64) and vector.dtype == np.float32
    assert docs.search(vector=vector[0], k=1)[0]["id"] == 5
    assert docs.delete([17]) == 1
    assert docs.count("hash@1") == 299
    assert "hash@1" in repr(docs)


def test_new_space_adapters_migration_and_reopen(engine):
    docs, texts = living(engine)
    space = docs.add_space("hash@2", encoder="hashing:96")
    assert space["dim"] == 96
    forward, backward = docs.fit_adapters("hash@1", "hash@2", kind="affine", pairs=200)
    assert forward["from"] == "hash@1" and backward["from"] == "hash@2"
    assert len(docs.adapters()) == 2
    # The new space holds only the calibration points; the rest is found through the adapter.
    assert docs.coverage("hash@2") < 1.0
    # A point the new space lacks is still found, through the adapter.
    through_adapter = 0
    for i in range(0, 300, 7):
        hits = docs.search(text=texts[i], space="hash@2", k=10)
        assert len(hits) == 10
        assert {h["source"] for h in hits} <= {"native", "rescored", "adapter"}
        top = {h["id"]: h["source"] for h in hits}
        if top.get(i) in ("adapter", "rescored"):
            through_adapter += 1
    assert through_adapter > 0
    # A slow migration can be paused and resumed.
    assert docs.migrate("hash@2", rate=20.0, batch_size=8)["phase"] == "running"
    docs.pause_migration()
    assert docs.migration_status()["phase"] == "paused"
    assert docs.coverage("hash@2") < 1.0
    status = docs.migrate("hash@2", batch_size=64)
    assert status["to"] == "hash@2"
    final = docs.wait_for_migration()
    assert final is not None and final["phase"] == "done", final
    assert docs.coverage("hash@2") == pytest.approx(1.0)
    assert docs.default_space == "hash@2"
    top = docs.search(text=texts[250], k=1)[0]
    assert top == {"id": 250, "score": pytest.approx(1.0, abs=1e-4), "source": "native"}
    report = docs.drift(space="hash@1", window=100)
    assert isinstance(report["drifted"], bool) and 0.0 <= report["mmd_p_value"] <= 1.0
    del docs
    again = paradox.LivingCollection.open(engine, "docs")
    assert [s["name"] for s in again.spaces()] == ["hash@1", "hash@2"]
    assert again.default_space == "hash@2"


def test_remove_space(engine):
    docs, texts = living(engine, n=100)
    docs.add_space("hash@2", encoder="hashing:96")
    docs.add_space("raw@1", dim=8)
    docs.fit_adapters("hash@1", "hash@2", pairs=40)

    def make_up():
        names = [s["name"] for s in docs.spaces()]
        return names, docs.default_space, len(docs.adapters()), sorted(engine.list_collections())

    before = make_up()
    # Refusals name the reason and remove nothing.
    with pytest.raises(ValueError, match="first space of collection `docs`"):
        docs.remove_space("hash@1")
    with pytest.raises(ValueError, match="unknown space `nope@1`"):
        docs.remove_space("nope@1")
    docs.set_default_space("hash@2")
    assert docs.default_space == "hash@2"
    with pytest.raises(ValueError, match="make another space the default first"):
        docs.remove_space("hash@2")
    with pytest.raises(ValueError, match="unknown space `nope@1`"):
        docs.set_default_space("nope@1")
    docs.set_default_space("hash@1")
    # 20 points a second: the migration still runs when the removal is refused.
    assert docs.migrate("hash@2", rate=20.0, batch_size=2)["phase"] == "running"
    with pytest.raises(ValueError, match="running migration `hash@1` -> `hash@2`"):
        docs.remove_space("hash@2")
    assert docs.migration_status()["phase"] == "running"
    docs.pause_migration()
    assert make_up() == before

    removed = docs.remove_space("hash@2")
    assert removed["name"] == "hash@2" and removed["collection"] == "docs--hash-v2"
    assert [s["name"] for s in docs.spaces()] == ["hash@1", "raw@1"]
    assert docs.adapters() == [] and docs.migration_status() is None
    assert "docs--hash-v2" not in engine.list_collections()
    assert docs.search(text=texts[4], k=1)[0]["id"] == 4
    with pytest.raises(ValueError, match="hash@2"):
        docs.search(text=texts[4], space="hash@2", k=1)
    del docs
    again = paradox.LivingCollection.open(engine, "docs")
    assert [s["name"] for s in again.spaces()] == ["hash@1", "raw@1"]
    assert again.count("hash@1") == 100


def test_python_encoder(engine):
    engine.create_collection("notes", 8, "cosine")
    calls = []

    def encode(batch):
        calls.append(len(batch))
        out = np.zeros((len(batch), 8), dtype=np.float32)
        for row, text in enumerate(batch):
            out[row, len(text) % 8] = 1.0
            out[row, (len(text) // 8) % 8] += 0.5
        return out

    notes = paradox.LivingCollection.init(engine, "notes", "len@1", encoder=encode, text_field="text")
    assert notes.upsert_texts(["a", "b"], ["hi", "hello there"]) == 2
    assert calls and sum(calls) >= 2
    assert notes.search(text="hello there", k=1)[0]["id"] == "b"
    notes.add_space("len@2", encoder=lambda batch: encode(batch) * 2.0, dim=8)
    assert notes.upsert_texts(["c"], ["third"]) == 1
    assert notes.count("len@2") == 1
    # The migration's thread runs the Python encoder too.
    notes.migrate("len@2")
    assert notes.wait_for_migration()["phase"] == "done"
    assert notes.coverage("len@2") == pytest.approx(1.0)

    def wrong_shape(batch):
        return np.zeros((len(batch), 3), dtype=np.float32)

    def failing(batch):
        raise RuntimeError("the model server is down")

    for bad, error, needle in [(wrong_shape, ValueError, "expected 8 values"), (failing, RuntimeError, "is down")]:
        notes.attach_encoder("len@1", bad)
        with pytest.raises(error, match=needle):
            notes.upsert_texts(["d"], ["lost?"])
        assert notes.count("len@1") == 3
    with pytest.raises(ValueError, match="no space `len@9`"):
        notes.attach_encoder("len@9", encode)
    # Python encoders are not stored: after reopening, texts need one attached again.
    reopened = paradox.LivingCollection.open(engine, "notes")
    with pytest.raises(ValueError, match="python"):
        reopened.upsert_texts(["e"], ["no encoder"])
    reopened.attach_encoder("len@1", encode)
    reopened.attach_encoder("len@2", lambda batch: encode(batch) * 2.0)
    assert reopened.upsert_texts(["e"], ["encoded again"]) == 1


def test_bad_input_is_named_and_loses_nothing(engine):
    docs, _ = living(engine, n=20)
    with pytest.raises(ValueError, match="2 ids but 1 texts"):
        docs.upsert_texts([1, 2], ["one"])
    with pytest.raises(ValueError, match="unknown encoder"):
        docs.add_space("x@1", encoder="bert")
    with pytest.raises(ValueError, match="NAME@VERSION"):
        docs.add_space("plain", encoder="hashing:8")
    with pytest.raises(ValueError, match="dim"):
        docs.add_space("py@1", encoder=lambda texts: None)
    with pytest.raises(ValueError, match="callable"):
        docs.add_space("py@1", encoder=42, dim=4)
    with pytest.raises(ValueError, match="unknown adapter kind"):
        docs.fit_adapters("hash@1", "hash@1", kind="pca")
    with pytest.raises(ValueError, match="nope@9"):
        docs.search(text="x", space="nope@9")
    with pytest.raises(ValueError, match="k"):
        docs.search(text="x", k=0)
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        docs.upsert_vectors("hash@1", [1], np.full((1, 64), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="1 ids but 2 vectors"):
        docs.upsert_vectors("hash@1", [1], np.ones((2, 64), dtype=np.float32))
    with pytest.raises(KeyError):
        paradox.LivingCollection.init(engine, "missing", "a@1")
    with pytest.raises(KeyError):
        paradox.LivingCollection.open(engine, "missing")
    engine.create_collection("plain", 4)
    with pytest.raises(ValueError, match="plain"):
        paradox.LivingCollection.open(engine, "plain")
    assert docs.count("hash@1") == 20
