"""paradoxlf 0.17's networked shard: ShardServer, RemoteShard, EdgeNode and the
`paradox-node` command, served by the Rust server's legacy routes."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

import paradox
from paradox.distributed import EdgeNode, LatentCluster, RemoteShard, ShardServer
from paradox.distributed.client import HTTPError


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_online(port, process=None, attempts=600):
    """GET / until the node answers (a readiness poll, not a timing assertion)."""
    for _ in range(attempts):
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the node exited early with {process.returncode}: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"no node answered on port {port}")


def test_old_style_program_end_to_end(capsys, rng):
    """A 0.17 program, unchanged: a node run in a thread, a RemoteShard client."""
    port = unused_port()
    server = ShardServer(dimension=4, shard_id="node_1")
    thread = threading.Thread(target=server.run, kwargs={"host": "127.0.0.1", "port": port}, daemon=True)
    thread.start()
    try:
        check_old_style_program(server, thread, port, capsys, rng)
    finally:
        server.stop()


def check_old_style_program(server, thread, port, capsys, rng):
    assert wait_until_online(port) == {"status": "online", "id": "node_1", "count": 0}

    shard = RemoteShard(host="127.0.0.1", port=port)
    out = capsys.readouterr().out
    assert f"[ShardServer] Listening on 127.0.0.1:{port}" in out
    status = "{'status': 'online', 'id': 'node_1', 'count': 0}"
    assert f"[RemoteShard] Connected to http://127.0.0.1:{port} | {status}" in out
    assert shard.id == f"remote_127.0.0.1_{port}"

    vectors = rng.standard_normal((20, 4)).astype(np.float32)
    for i, v in enumerate(vectors):
        assert shard.add(v, {"name": f"v{i}"}) is None
    shard.add(vectors[0].tolist())  # lists and no attributes, as 0.17 accepted
    assert shard.count() == 21

    hits = shard.query(vectors[3], k=3)
    assert [type(h) for h in hits] == [tuple] * 3
    assert hits[0][0] == 3 and hits[0][2] == {"name": "v3", "_id": 3}
    want = np.sort(np.linalg.norm(vectors - vectors[3], axis=1))[:3]
    np.testing.assert_allclose([h[1] for h in hits], want, rtol=1e-4, atol=1e-4)
    assert shard.query(vectors[3], k=0) == []
    twins = {h[0]: h[2] for h in shard.query(vectors[0], k=2)}
    assert twins == {0: {"name": "v0", "_id": 0}, 20: {"_id": 20}}

    with pytest.raises(HTTPError) as wrong:
        shard.add([1.0, 2.0])
    assert wrong.value.status_code == 400 and "dimension" in str(wrong.value)
    assert isinstance(wrong.value, OSError)

    server.stop()
    thread.join(timeout=60)
    assert not thread.is_alive() and not server.running
    with pytest.raises(ConnectionError):
        shard.count()


OLD_PROGRAM = """
import threading, time, numpy as np
from paradox.distributed import RemoteShard, ShardServer
server = ShardServer(dimension=2, shard_id="daemon")
threading.Thread(target=server.run, kwargs={"host": "127.0.0.1", "port": PORT}, daemon=True).start()
for _ in range(600):
    try:
        shard = RemoteShard(host="127.0.0.1", port=PORT)
        shard.add(np.array([1.0, 2.0]), {"kept": True})
        break
    except OSError:
        time.sleep(0.05)
print("added", shard.count())


class SlowToFinalize:  # exiting takes a moment, as real programs' often does
    def __del__(self, sleep=time.sleep):
        sleep(0.5)


slow = SlowToFinalize()
"""


def test_program_exiting_with_a_node_in_a_daemon_thread(tmp_path):
    """0.17 programs ran `server.run` in a daemon thread and just exited: the process
    must end normally (the node is stopped at exit), not abort."""
    port = unused_port()
    script = tmp_path / "old_program.py"
    script.write_text(OLD_PROGRAM.replace("PORT", str(port)))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "added 1" in result.stdout and "FATAL" not in result.stderr


def test_persistence_path_survives_a_restart(tmp_path, capsys):
    pickle_path = tmp_path / "persistence" / "shard.pkl"
    with ShardServer(dimension=2, shard_id="p", persistence_path=str(pickle_path)) as server:
        shard = RemoteShard(host="127.0.0.1", port=server.port)
        shard.add(np.array([1.0, 0.0]), {"a": 1})
        shard.add(np.array([0.0, 1.0]), {"a": 2})
        server.save_state()
    assert (tmp_path / "persistence" / "shard.paradox").is_dir()
    assert not pickle_path.exists()

    with ShardServer(dimension=2, shard_id="p", persistence_path=str(pickle_path)) as again:
        shard = RemoteShard(host="127.0.0.1", port=again.port)
        assert shard.count() == 2
        shard.add([1.0, 1.0])  # ids continue after a restart
        assert shard.query([1.0, 1.0], k=1)[0][:1] == (2,)
        # The same data through the /v1 API and the served engine.
        assert paradox.connect(again.url)["legacy"].count() == 3
    with pytest.raises(ValueError, match="dimension"):
        ShardServer(dimension=3, persistence_path=str(pickle_path)).start()


def test_temporary_shard_is_removed_on_stop():
    server = ShardServer(dimension=2).start()
    data_dir = server._temporary
    assert data_dir is not None and os.path.isdir(data_dir)
    with pytest.raises(RuntimeError, match="already running"):
        server.start()
    server.stop()
    assert not os.path.exists(data_dir)
    with pytest.raises(ValueError, match="dimension"):
        ShardServer(dimension=0)


def test_cluster_over_remote_shards(rng):
    vectors = rng.standard_normal((12, 3)).astype(np.float32)
    with ShardServer(dimension=3, shard_id="a") as a, ShardServer(dimension=3, shard_id="b") as b:
        cluster = LatentCluster(dimension=3, num_shards=2)
        cluster.shards = [RemoteShard("127.0.0.1", a.port), RemoteShard("127.0.0.1", b.port)]
        for i, v in enumerate(vectors):
            cluster.add(v, {"i": i})
        assert cluster.total_count == 12
        hits = cluster.query(vectors[5], k=3)
        assert hits[0][2]["i"] == 5 and hits[0][0] == 5 // 2
        want = np.sort(np.linalg.norm(vectors - vectors[5], axis=1))[:3]
        np.testing.assert_allclose([h[1] for h in hits], want, rtol=1e-4, atol=1e-4)


def test_edge_node_syncs_to_a_remote_cloud(capsys):
    with ShardServer(dimension=2, shard_id="cloud") as cloud:
        edge = EdgeNode(cloud_host="127.0.0.1", cloud_port=cloud.port, local_dim=2)
        assert edge.perceive([0.0, 0.0])["status"] == "Novel (Synced)"
        assert edge.perceive([0.1, 0.0])["status"] == "Known"
        assert edge.perceive([5.0, 5.0], {"far": True})["status"] == "Novel (Synced)"
        assert RemoteShard("127.0.0.1", cloud.port).count() == 2
        hits = edge.query_hybrid([9.0, 9.0], k=1)  # local is too far: the cloud answers
        assert hits[0][2] == {"far": True, "_id": 1}

    lonely = EdgeNode(cloud_host="127.0.0.1", cloud_port=unused_port(), local_dim=2)
    assert "[RemoteShard] Connection Failed" in capsys.readouterr().out
    assert lonely.perceive([1.0, 1.0])["status"].startswith("Novel (Sync Failed")
    with pytest.raises(ConnectionError):
        lonely.sync_all()


def node_command():
    script = os.path.join(os.path.dirname(sys.executable), "paradox-node")
    assert os.path.exists(script), "the paradox-node entry point is not installed"
    return script


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_paradox_node_command(tmp_path, rng, stop_signal):
    port = unused_port()
    persistence = tmp_path / "node" / "shard.pkl"
    process = subprocess.Popen(
        [node_command(), "--id", "node_7", "--port", str(port), "--dimension", "3", "--persistence", str(persistence)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_until_online(port, process) == {"status": "online", "id": "node_7", "count": 0}
        shard = RemoteShard(host="127.0.0.1", port=port)
        vectors = rng.standard_normal((5, 3)).astype(np.float32)
        for v in vectors:
            shard.add(v)
        assert shard.query(vectors[4], k=1)[0][0] == 4
    finally:
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "=== Paradox Node: node_7 ===" in output
    assert f"[ShardServer] Listening on 0.0.0.0:{port}" in output
    # The signal stopped it gracefully: every write is in the data directory.
    engine = paradox.Engine(str(tmp_path / "node" / "shard.paradox"))
    assert engine["legacy"].count() == 5


def test_paradox_node_flags_and_errors(tmp_path):
    result = subprocess.run([node_command(), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--id", "--port", "--dimension", "--persistence"):
        assert flag in result.stdout
    result = subprocess.run(
        [node_command(), "--port", "1", "--dimension", "0", "--persistence", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "dimension" in result.stderr
