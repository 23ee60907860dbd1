"""Kept versions, as-of search and reasoning from Python."""

import time

import numpy as np
import pytest

import paradox
from paradox import reasoning


def boundary():
    """A time (ms) after every write so far and before every later one."""
    t = int(time.time() * 1000)
    while int(time.time() * 1000) <= t:
        time.sleep(0.001)
    return t


def test_history_and_as_of_search(engine):
    col = engine.create_collection("h", 4, "l2", index="flat", history=True)
    col.upsert([1], np.ones((1, 4), dtype=np.float32))
    t1 = boundary()
    col.upsert([1], np.full((1, 4), 2.0, dtype=np.float32))
    t2 = boundary()
    col.delete([1])

    versions = col.history(1)
    assert [v["vector"].tolist() for v in versions] == [[1.0] * 4, [2.0] * 4]
    assert versions[0]["valid_to"] == versions[1]["updated_at"]
    assert versions[1]["valid_to"] is not None

    zero = np.zeros(4, dtype=np.float32)
    ids, scores = col.search(zero, k=3, as_of=t1)
    assert ids.tolist() == [1] and scores.tolist() == [4.0]
    ids, scores = col.search(zero, k=3, as_of=t2)
    assert ids.tolist() == [1] and scores.tolist() == [16.0]
    ids, _ = col.search(zero, k=3)
    assert ids.tolist() == []


def test_history_needs_a_collection_that_keeps_it(engine):
    col = engine.create_collection("plain", 4, "l2")
    col.upsert([1], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="history"):
        col.history(1)
    with pytest.raises(ValueError, match="as_of"):
        col.search(np.zeros(4, dtype=np.float32), k=1, as_of=0)


@pytest.fixture
def words(engine):
    col = engine.create_collection("words", 3, "cosine", index="flat", history=True)
    col.upsert(
        ["man", "king", "woman", "queen", "other"],
        np.array(
            [[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [1, -1, -1]], dtype=np.float32
        ),
    )
    return col


def test_reasoning_helpers(words):
    assert reasoning.analogy(words, "man", "king", "woman", k=1)["hits"][0]["id"] == "queen"
    mul = reasoning.analogy(words, "man", "king", "woman", k=1, method="3cosmul")
    assert mul["hits"][0]["id"] == "queen"
    out = reasoning.arithmetic(words, [("king", 1), ("man", -1), ([0, 0, 1], 1)], k=1)
    assert out["hits"][0]["id"] == "queen"
    assert np.isclose(np.linalg.norm(out["vector"]), 1.0, atol=1e-5)
    out = reasoning.blend(words, ["man", "queen"], mode="slerp", t=0.9, k=1)
    assert out["hits"][0]["id"] == "queen"
    out = reasoning.attention_search(words, [1, 1, 1], [0, 0, 1], k=2)
    assert {h["id"] for h in out["hits"]} == {"woman", "queen"}


def test_trajectory_from_kept_versions(words):
    words.upsert(["queen"], np.array([[0, 1, 2]], dtype=np.float32))
    boundary()
    words.upsert(["queen"], np.array([[0, 1, 3]], dtype=np.float32))
    out = reasoning.trajectory(words, "queen", predict={"method": "linear"})
    traj = out["trajectory"]
    assert len(traj["times"]) == len(traj["vectors"]) >= 2
    assert traj["predicted_at"] > traj["times"][-1]
    assert len(out["vector"]) == 3


def test_bad_reasoning_requests_raise_clear_errors(words):
    with pytest.raises(KeyError, match="nowhere"):
        reasoning.analogy(words, "man", "king", "nowhere")
    with pytest.raises(ValueError, match="exactly two"):
        reasoning.blend(words, ["man"])
    with pytest.raises(ValueError, match="dream"):
        words.reason({"op": "dream"})
    with pytest.raises(ValueError, match="weights"):
        reasoning.attention_search(words, [1, 1, 1], [1, -1, 1])
