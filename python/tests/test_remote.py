"""paradox.serve (the Rust server in this process) and paradox.connect (its REST client):
the remote API must answer like the native one."""

import socket

import numpy as np
import pytest

import paradox
from paradox.remote import AuthError, InvalidRequest, NotFound, RemoteError


def serve(data_dir, **kwargs):
    kwargs.setdefault("rest_addr", "127.0.0.1:0")
    kwargs.setdefault("grpc_addr", "off")
    kwargs.setdefault("fsync", "never")
    return paradox.serve(str(data_dir), **kwargs)


@pytest.fixture
def server(tmp_path):
    with serve(tmp_path / "served") as running:
        yield running


@pytest.fixture
def client(server):
    return paradox.connect(server.url)


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(collection, base, payloads=None):
    return collection.upsert(np.arange(len(base)), base, payloads)


def test_search_matches_the_native_engine(client, engine, rng):
    base = rng.standard_normal((300, 8)).astype(np.float32)
    payloads = [{"parity": "even" if i % 2 == 0 else "odd", "i": i} for i in range(300)]
    local = engine.create_collection("docs", 8, "l2", index="flat")
    remote = client.create_collection("docs", 8, "l2", index="flat")
    assert load(local, base, payloads) == load(remote, base, payloads) == 300
    assert remote.count() == 300 and len(remote) == 300
    assert (remote.name, remote.dim, remote.metric) == ("docs", 8, "l2")

    queries = rng.standard_normal((7, 8)).astype(np.float32)
    for args in [
        dict(k=5),
        dict(k=4, filter={"key": "parity", "eq": "odd"}),
        dict(k=3, filter='{"key": "i", "range": {"lt": 50}}', with_payload=True),
        dict(k=6, params={"exact": True}),
    ]:
        want = local.search(queries, **args)
        got = remote.search(queries, **args)
        assert got[0].shape == want[0].shape == (7, args["k"]) and got[0].dtype == np.int64
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-5)
        assert got[1].dtype == np.float32
        if args.get("with_payload"):
            assert got[2] == want[2]
        single_want = local.search(queries[2], **args)
        single_got = remote.search(queries[2], **args)
        np.testing.assert_array_equal(single_got[0], single_want[0])
        np.testing.assert_allclose(single_got[1], single_want[1], rtol=1e-5, atol=1e-5)

    assert remote.count(filter={"key": "parity", "eq": "even"}) == 150


def test_padding_and_string_ids_like_native(client, engine):
    vectors = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    local = engine.create_collection("s", 2, "cosine")
    remote = client.create_collection("s", 2, "cosine")
    for col in (local, remote):
        col.upsert(["a", "b", "c"], vectors, [{"n": 1}, None, {"n": 3}])
    queries = np.array([[1, 0.1], [0.1, 1]], dtype=np.float32)
    want = local.search(queries, k=5, with_payload=True)
    got = remote.search(queries, k=5, with_payload=True)
    assert got[0].dtype == object and got[0].shape == (2, 5)
    assert got[0].tolist() == want[0].tolist()
    assert got[0][0, 3] is None and np.isnan(got[1][0, 3])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-5)
    assert got[2] == want[2]
    ids, scores = remote.search(queries[0], k=5)
    assert ids.shape == (3,) and list(ids) == list(local.search(queries[0], k=5)[0])


def test_get_delete_scroll_like_native(client, engine, rng):
    base = rng.standard_normal((40, 4)).astype(np.float32)
    local = engine.create_collection("p", 4, "dot")
    remote = client.create_collection("p", 4, "dot")
    for col in (local, remote):
        load(col, base, [{"i": i} for i in range(40)])

    one = remote.get(5)
    assert one["id"] == 5 and one["payload"] == {"i": 5}
    np.testing.assert_array_equal(one["vector"], base[5])
    assert one["vector"].dtype == np.float32
    assert set(one) == set(local.get(5))
    many = remote.get([3, 999, 7])
    assert many[1] is None and [p["id"] for p in (many[0], many[2])] == [3, 7]
    assert remote.get(np.array([1, 2]))[1]["payload"] == {"i": 2}

    assert remote.delete([1, 2, 999]) == local.delete([1, 2, 999]) == 2
    by_filter = {"key": "i", "range": {"gte": 30}}
    assert remote.delete(filter=by_filter) == local.delete(filter=by_filter) == 10
    assert remote.count() == 28

    scrolled = list(remote.scroll(batch_size=5))
    assert [p["id"] for p in scrolled] == [p["id"] for p in local.scroll()]
    assert len(scrolled) == 28 and "vector" not in scrolled[0]
    with_vectors = list(remote.scroll(batch_size=100, with_vector=True))
    np.testing.assert_array_equal(with_vectors[0]["vector"], base[0])
    only_low = [p["id"] for p in remote.scroll(filter={"key": "i", "range": {"lt": 5}}, batch_size=2)]
    assert only_low == [0, 3, 4]
    with pytest.raises(ValueError, match="batch_size"):
        remote.scroll(batch_size=0)


def test_collections_listing_and_errors(client, server):
    client.create_collection("b", 3)
    client.create_collection("a", 3, "l2", index={"kind": "hnsw", "m": 8})
    assert client.list_collections() == ["a", "b"]
    assert "a" in client and "zz" not in client
    assert client["a"].metric == "l2"

    with pytest.raises(KeyError, match="zz"):
        client.collection("zz")
    with pytest.raises(NotFound) as missing:
        client["zz"].count()
    assert missing.value.status == 404 and missing.value.code == "not_found"
    assert isinstance(missing.value, paradox.ParadoxError)

    with pytest.raises(ValueError, match="already"):
        client.create_collection("a", 3)
    with pytest.raises(ValueError, match="dimension"):
        client["a"].upsert([1], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        client["a"].search(np.array([np.nan, 0, 0], dtype=np.float32))
    with pytest.raises(ValueError, match="2 ids but 1 vectors"):
        client["a"].upsert([1, 2], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="booleans"):
        client["a"].get(True)
    with pytest.raises(ValueError, match="exactly one"):
        client["a"].delete()

    client.drop_collection("b")
    assert client.list_collections() == ["a"]
    with pytest.raises(KeyError):
        client.drop_collection("b")
    # What a client writes is what the served engine holds.
    client["a"].upsert([10, 11], np.eye(3, dtype=np.float32)[:2])
    assert server.engine["a"].count() == 2


def test_unreachable_and_bad_urls():
    with pytest.raises(ConnectionError, match="cannot reach"):
        paradox.connect(f"http://127.0.0.1:{unused_port()}")
    with pytest.raises(ValueError, match="url"):
        paradox.connect("127.0.0.1:8333")


def test_api_keys(tmp_path):
    with serve(tmp_path / "auth", api_key="a-long-secret") as server:
        with pytest.raises(PermissionError) as refused:
            paradox.connect(server.url)
        assert isinstance(refused.value, AuthError) and refused.value.status == 401
        with pytest.raises(PermissionError):
            paradox.connect(server.url, api_key="the-wrong-key")
        client = paradox.connect(server.url, api_key="a-long-secret")
        client.create_collection("k", 2).upsert([1], [[1.0, 2.0]])
        assert client["k"].count() == 1


def test_requests_are_split_within_server_limits(tmp_path, rng):
    config = tmp_path / "paradox.toml"
    config.write_text("[limits]\nmax_batch = 10\nmax_k = 4\nmax_body_bytes = 4096\n")
    base = rng.standard_normal((95, 16)).astype(np.float32)
    with serve(tmp_path / "small", config=str(config)) as server:
        client = paradox.connect(server.url)
        col = client.create_collection("big", 16, "l2", index="flat")
        assert col.upsert(np.arange(95), base, [{"i": i} for i in range(95)]) == 95
        assert col.count() == 95
        ids, _ = col.search(base[:25], k=1)
        assert ids[:, 0].tolist() == list(range(25))
        assert [p["id"] for p in col.get(list(range(30)))] == list(range(30))
        assert len(list(col.scroll(batch_size=500))) == 95
        assert col.delete(list(range(0, 95, 2))) == 48
        with pytest.raises(ValueError, match="max_k"):
            col.search(base[0], k=5)


def test_snapshots_download_and_restore(client, tmp_path, rng):
    base = rng.standard_normal((20, 3)).astype(np.float32)
    col = client.create_collection("snap", 3, "l2")
    load(col, base)
    dest = tmp_path / "snap.snapshot"
    description = col.snapshot(str(dest))
    assert description["collection"] == "snap" and dest.stat().st_size == description["bytes"]
    assert [s["name"] for s in col.snapshots()] == [description["name"]]

    restored = col.restore_snapshot(description["name"], name="snap_copy")
    assert restored.name == "snap_copy" and restored.count() == 20
    local = paradox.Engine(str(tmp_path / "elsewhere")).restore(str(dest), "copy")
    assert local.count() == 20
    np.testing.assert_array_equal(local.get(7)["vector"], base[7])
    with pytest.raises(KeyError):
        col.download_snapshot("nope-1.snap", str(tmp_path / "x"))


def test_server_lifecycle(tmp_path, rng):
    data = tmp_path / "life"
    server = serve(data)
    assert server.running and server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    assert server.grpc_addr is None
    assert server.wait(timeout=0) is False
    client = paradox.connect(server.url)
    client.create_collection("kept", 2).upsert([1, 2], [[1.0, 0.0], [0.0, 1.0]])
    url = server.url
    server.stop()
    server.stop()  # idempotent
    assert not server.running and server.wait() is True
    with pytest.raises(ConnectionError):
        paradox.connect(url)
    del server, client
    # Every acknowledged write was flushed: a new server on the directory has them.
    with serve(data) as again:
        assert paradox.connect(again.url)["kept"].count() == 2


def test_bad_server_arguments(tmp_path):
    with pytest.raises(ValueError, match="rest_addr"):
        serve(tmp_path / "a", rest_addr="localhost")
    with pytest.raises(ValueError, match="fsync"):
        serve(tmp_path / "b", fsync="sometimes")
    with pytest.raises(ValueError, match="timeout"):
        with serve(tmp_path / "c") as s:
            s.wait(timeout=-1)
    with serve(tmp_path / "d") as first:
        with pytest.raises(OSError, match="cannot listen"):
            serve(tmp_path / "e", rest_addr=first.rest_addr)
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_key = 1\n")
    with pytest.raises(ValueError, match="no_such_key"):
        serve(tmp_path / "f", config=str(bad))


def test_grpc_listener_and_legacy_routes_can_be_enabled(tmp_path):
    with serve(tmp_path / "g", grpc_addr="127.0.0.1:0", legacy=True, legacy_id="n9", legacy_dimension=3) as server:
        assert server.grpc_addr is not None and int(server.grpc_addr.rsplit(":", 1)[1]) > 0
        client = paradox.connect(server.url)
        assert client["legacy"].dim == 3 and client["legacy"].metric == "l2"


def test_remote_error_is_a_paradox_error():
    assert issubclass(RemoteError, paradox.ParadoxError)
    assert issubclass(InvalidRequest, ValueError)
    assert issubclass(NotFound, LookupError)
    assert issubclass(AuthError, PermissionError)


def boundary():
    """A time (ms) after every write so far and before every later one."""
    import time

    t = int(time.time() * 1000)
    while int(time.time() * 1000) <= t:
        time.sleep(0.001)
    return t


def test_history_and_as_of_search_like_native(client, engine):
    remote = client.create_collection("h", 4, "l2", index="flat", history=True)
    remote.upsert([1], np.ones((1, 4), dtype=np.float32), [{"v": 1}])
    t1 = boundary()
    remote.upsert([1], np.full((1, 4), 2.0, dtype=np.float32), [{"v": 2}])
    t2 = boundary()
    remote.delete([1])

    versions = remote.history(1)
    assert [v["vector"].tolist() for v in versions] == [[1.0] * 4, [2.0] * 4]
    assert [v["payload"] for v in versions] == [{"v": 1}, {"v": 2}]
    assert versions[0]["valid_to"] == versions[1]["updated_at"] and versions[1]["valid_to"] is not None
    local = engine.create_collection("h", 4, "l2", history=True)
    local.upsert([1], np.ones((1, 4), dtype=np.float32))
    assert set(versions[0]) == set(local.history(1)[0])

    zero = np.zeros(4, dtype=np.float32)
    ids, scores = remote.search(zero, k=3, as_of=t1)
    assert ids.tolist() == [1] and scores.tolist() == [4.0]
    ids, scores, payloads = remote.search(zero[None, :], k=2, as_of=t2, with_payload=True)
    assert ids.tolist() == [[1, -1]] and scores[0, 0] == 16.0 and payloads[0][0] == {"v": 2}
    assert remote.search(zero, k=3)[0].tolist() == []

    plain = client.create_collection("plain", 4, "l2")
    plain.upsert([1], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="history"):
        plain.history(1)
    with pytest.raises(ValueError, match="as_of"):
        plain.search(zero, k=1, as_of=0)
    with pytest.raises(ValueError, match="cannot be told from a number"):
        plain.history("12")


def test_reasoning_helpers_work_over_the_network(client, engine):
    from paradox import reasoning

    vectors = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [1, -1, -1]], dtype=np.float32)
    words = ["man", "king", "woman", "queen", "other"]
    local = engine.create_collection("words", 3, "cosine", index="flat", history=True)
    remote = client.create_collection("words", 3, "cosine", index="flat", history=True)
    for col in (local, remote):
        col.upsert(words, vectors)

    calls = [
        lambda c: reasoning.analogy(c, "man", "king", "woman", k=2),
        lambda c: reasoning.analogy(c, "man", "king", "woman", k=1, method="3cosmul"),
        lambda c: reasoning.arithmetic(c, [("king", 1), ("man", -1), ([0, 0, 1], 1)], k=2),
        lambda c: reasoning.blend(c, ["man", "queen"], mode="slerp", t=0.9, k=1),
        lambda c: reasoning.attention_search(c, [1, 1, 1], [0, 0, 1], k=2),
    ]
    for call in calls:
        want, got = call(local), call(remote)
        assert [h["id"] for h in got["hits"]] == [h["id"] for h in want["hits"]]
        np.testing.assert_allclose([h["score"] for h in got["hits"]], [h["score"] for h in want["hits"]], rtol=1e-5)
        if "vector" in want:
            np.testing.assert_allclose(got["vector"], want["vector"], rtol=1e-5, atol=1e-6)
    assert reasoning.analogy(remote, "man", "king", "woman", k=1)["hits"][0]["id"] == "queen"

    remote.upsert(["queen"], np.array([[0, 1, 2]], dtype=np.float32))
    trajectory = reasoning.trajectory(remote, "queen", predict={"method": "linear", "at": boundary() + 1000})
    assert len(trajectory["trajectory"]["times"]) == 2 and len(trajectory["vector"]) == 3
    with pytest.raises(KeyError):
        reasoning.analogy(remote, "man", "king", "nobody")
    with pytest.raises(ValueError):
        remote.reason({"op": "no_such_op"})
