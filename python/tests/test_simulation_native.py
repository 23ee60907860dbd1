"""paradox.Simulation: native dynamics, expressions and Python callables over a collection."""

import numpy as np
import pytest

import paradox


@pytest.fixture()
def docs(tmp_path):
    engine = paradox.Engine(str(tmp_path / "data"))
    col = engine.create_collection("docs", dim=4, metric="l2", history=True)
    vectors = np.arange(40, dtype=np.float32).reshape(10, 4) / 10.0
    col.upsert(list(range(10)), vectors, payloads=[{"group": i % 2} for i in range(10)])
    return col, vectors


def test_builtin_expression_and_callable_compose(docs):
    col, vectors = docs
    seen = []

    def double(block, step, dt):
        seen.append((block.shape, step, dt))
        block *= 2.0  # in place

    sim = paradox.Simulation(
        col,
        [{"kind": "decay", "rate": 0.5}, "x + 1", double],
        dt=0.2,
        block_rows=4,
    )
    assert len(sim) == 10 and sim.ids == list(range(10))
    assert sim.run(2) == 2 and sim.steps_taken == 2
    expected = vectors.copy()
    for _ in range(2):
        expected = (expected * (1 - 0.5 * 0.2) + 1.0) * 2.0
    np.testing.assert_allclose(sim.vectors, expected, rtol=1e-5)
    assert [s[0] for s in seen[:3]] == [(4, 4), (4, 4), (2, 4)]
    assert seen[0][1] == 0 and seen[-1][1] == 1 and seen[0][2] == pytest.approx(0.2)


def test_returned_blocks_filter_write_back_and_history(docs):
    col, vectors = docs
    sim = paradox.Simulation(col, [lambda block, step, dt: block + 10.0], filter={"key": "group", "eq": 0})
    assert sim.ids == [0, 2, 4, 6, 8]
    sim.run(1)
    assert sim.write_back() == 5
    np.testing.assert_allclose(col.get(2)["vector"], vectors[2] + 10.0)
    np.testing.assert_allclose(col.get(3)["vector"], vectors[3])
    history = col.history(2)
    assert len(history) == 2
    np.testing.assert_allclose(history[0]["vector"], vectors[2])


def test_callback_stops_and_bad_dynamics_are_value_errors(docs):
    col, _ = docs
    sim = paradox.Simulation(col, [{"kind": "noise", "sigma": 0.1, "seed": 3}])
    assert sim.run(10, callback=lambda step, total: step < 3) == 3
    with pytest.raises(ValueError, match="kinds"):
        paradox.Simulation(col, [{"kind": "wormhole"}])
    with pytest.raises(ValueError, match="dimension"):
        paradox.Simulation(col, [{"kind": "gravity_well", "center": [0.0, 0.0], "strength": 1.0}])
    with pytest.raises(ValueError, match="expression"):
        paradox.Simulation(col, ["x + unknown_name"])
    with pytest.raises(ValueError, match="strength"):
        paradox.Simulation(col, [{"kind": "gravity_well", "center": [0.0] * 4, "strength": 1e39}])
    with pytest.raises(ValueError, match="radius"):
        paradox.Simulation(col, [{"kind": "repulsion", "sources": [], "strength": 1.0, "radius": -1.0}])
    with pytest.raises(ValueError, match="nested"):
        paradox.Simulation(col, ["(" * 100_000 + "x" + ")" * 100_000])
    with pytest.raises(ValueError, match="dt"):
        paradox.Simulation(col, ["x"], dt=0.0)
    bad_shape = paradox.Simulation(col, [lambda block, step, dt: block[:1]])
    with pytest.raises(ValueError, match="shape"):
        bad_shape.run(1)
    bad_value = paradox.Simulation(col, [lambda block, step, dt: block * np.nan])
    with pytest.raises(ValueError, match="non-finite"):
        bad_value.run(1)

    def broken(block, step, dt):
        raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError, match="user code failed"):
        paradox.Simulation(col, [broken]).run(1)
