"""Guided evolution from Python: the native ask/tell optimisers and the 0.17 layers on them."""

import numpy as np
import pytest

from paradox.evolution import CMAES, GA, GeneticOptimizer, MapElites, NoveltyArchive, SafetyGuard, minimize


def sphere(x):
    return float(np.dot(x, x))


def rosenbrock(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rastrigin(x):
    return float(10 * len(x) + np.sum(x * x - 10 * np.cos(2 * np.pi * x)))


def test_cmaes_ask_tell_reaches_the_target_on_the_sphere():
    es = CMAES(np.full(8, 2.0), 0.5, seed=3, target=1e-10)
    while es.stop() is None:
        xs = es.ask()
        assert xs.shape == (es.popsize, 8) and xs.dtype == np.float64
        es.tell(xs, [sphere(x) for x in xs])
    x, f = es.best
    assert es.stop() == "target" and f <= 1e-10
    assert np.abs(x).max() < 1e-4
    assert es.evaluations == es.generation * es.popsize


def test_separable_cmaes_and_repaired_candidates():
    guard = SafetyGuard(lower=np.full(5, 0.5), upper=np.full(5, 3.0))
    es = CMAES(np.full(5, 2.0), 0.5, separable=True, seed=1, max_evals=4000)
    while es.stop() is None:
        xs, _ = guard.repair_all(es.ask())
        es.tell(xs, [sphere(x) for x in xs])
    x, f = es.best
    # The constrained optimum is the box's corner at 0.5.
    np.testing.assert_allclose(x, np.full(5, 0.5), atol=1e-3)
    assert f == pytest.approx(1.25, abs=1e-2)


def test_minimize_rosenbrock_restarts_and_surrogate():
    plain = minimize(rosenbrock, np.zeros(6), 0.5, target=1e-8, seed=2)
    assert plain["f"] <= 1e-8 and plain["stop"] == "target"
    np.testing.assert_allclose(plain["x"], np.ones(6), atol=1e-3)
    assisted = minimize(rosenbrock, np.zeros(6), 0.5, target=1e-8, seed=2, surrogate="quadratic")
    assert assisted["f"] <= 1e-8
    batched = minimize(
        lambda xs: [rosenbrock(x) for x in xs], np.zeros(6), 0.5, target=1e-8, seed=2, surrogate="quadratic", batch=True
    )
    assert batched["evaluations"] == assisted["evaluations"] and batched["f"] == assisted["f"]
    assert assisted["evaluations"] < plain["evaluations"], (assisted["evaluations"], plain["evaluations"])
    bipop = minimize(
        lambda xs: [rastrigin(x) for x in xs],
        np.full(4, 3.0),
        2.0,
        restarts="bipop",
        target=1e-8,
        max_evals=200_000,
        seed=5,
        batch=True,
    )
    assert bipop["f"] <= 1e-8, bipop["runs"]
    assert sum(r["evaluations"] for r in bipop["runs"]) == bipop["evaluations"]


def test_ga_with_a_guard_never_proposes_a_forbidden_point():
    guard = SafetyGuard(max_norm=2.0, forbidden=[(np.zeros(3), 0.5)])
    ga = GA(np.full(3, 1.0), popsize=20, seed=4, guard=guard)
    for _ in range(40):
        xs = ga.ask()
        assert all(guard.is_allowed(x) for x in xs)
        ga.tell(xs, [sphere(x) for x in xs])
    x, f = ga.best
    # The best allowed points sit on the forbidden ball's surface.
    assert 0.25 - 1e-9 <= f < 0.35 and guard.is_allowed(x)
    population, fitness = ga.population
    assert population.shape == (20, 3) and fitness.shape == (20,)
    assert len(ga.operator_values) == 3


def test_map_elites_fills_cells_and_novelty_archive():
    archive = MapElites([0.0, 0.0], [1.0, 1.0], bins=4, seed=1)
    assert archive.ask(3) is None
    rng = np.random.default_rng(0)
    for x in rng.uniform(0, 1, size=(200, 2)):
        archive.insert(x, sphere(x), x)
    for _ in range(20):
        for x in archive.ask(10):
            archive.insert(x, sphere(x), np.clip(x, 0, 1))
    assert archive.cells == 16 and archive.coverage == 1.0
    corner = [f for (_, f, b) in archive.elites() if archive.cell_of(b) == 0]
    assert corner and corner[0] < 0.05

    cvt = MapElites([0.0] * 3, [1.0] * 3, cvt_cells=10, samples=500)
    assert cvt.cells == 10

    novelty = NoveltyArchive(k=2)
    assert novelty.novelty([0.0, 0.0]) == float("inf")
    novelty.add(np.array([[1.0, 0.0], [3.0, 0.0]]))
    assert len(novelty) == 2
    assert novelty.novelty([0.0, 0.0]) == pytest.approx(2.0)
    assert novelty.novelty([0.0, 0.0], population=[[0.0, 0.0]], skip=0) == pytest.approx(2.0)


def test_bad_input_is_a_value_error_naming_the_argument():
    es = CMAES(np.zeros(3), 0.3)
    with pytest.raises(ValueError, match="tell before ask"):
        es.tell(np.zeros((es.popsize, 3)), np.zeros(es.popsize))
    xs = es.ask()
    with pytest.raises(ValueError, match="candidates"):
        es.tell(xs[:2], [0.0, 0.0])
    with pytest.raises(ValueError, match="dimension mismatch"):
        es.tell(np.zeros((es.popsize, 4)), np.zeros(es.popsize))
    with pytest.raises(ValueError, match="fitness"):
        es.tell(xs, [0.0])
    es.tell(xs, [float("nan")] * es.popsize)  # NaN fitness counts as worst
    with pytest.raises(ValueError, match="sigma0"):
        CMAES(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="x0"):
        CMAES(np.array([0.0, np.nan]), 1.0)
    with pytest.raises(ValueError, match="x0"):
        CMAES(np.zeros(0), 1.0)
    with pytest.raises(ValueError, match="popsize"):
        GA(np.zeros(3), popsize=2, elite=2)
    with pytest.raises(ValueError, match="mutation_rate"):
        GA(np.zeros(3), mutation_rate=1.5)
    with pytest.raises(ValueError, match="guard"):
        GA(np.zeros(3), guard=SafetyGuard(lower=np.zeros(2), upper=np.ones(2)))
    with pytest.raises(ValueError, match="lower"):
        SafetyGuard(lower=[1.0], upper=[0.0])
    with pytest.raises(ValueError, match="forbidden"):
        SafetyGuard(forbidden=[np.zeros(2)])
    with pytest.raises(ValueError, match="bins"):
        MapElites(np.zeros(12), np.ones(12), bins=10)
    with pytest.raises(ValueError, match="lower"):
        MapElites([0.0], [0.0], bins=3)
    with pytest.raises(ValueError, match="restarts"):
        minimize(sphere, np.zeros(2), 1.0, restarts="sometimes")
    with pytest.raises(ValueError, match="surrogate"):
        minimize(sphere, np.zeros(2), 1.0, surrogate="gp")
    with pytest.raises(ValueError, match="objective"):
        minimize(lambda x: "high", np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="popsize"):
        CMAES(np.zeros(3), 1.0, popsize=2**40)
    with pytest.raises(ValueError, match="separable"):
        CMAES(np.zeros(5000), 1.0)
    assert CMAES(np.zeros(5000), 1.0, separable=True).dimension == 5000
    with pytest.raises(ValueError, match="max_restarts"):
        minimize(sphere, np.zeros(2), 1.0, restarts="ipop", max_restarts=100)
    with pytest.raises(ValueError, match="finite distance"):
        MapElites([-1e308], [1e308], cvt_cells=4)
    archive = MapElites([0.0], [1.0], bins=2)
    assert archive.insert([0.5], float("nan"), [0.5]) is False and archive.coverage == 0.0
    with pytest.raises(ValueError, match="at most"):
        archive.ask(2**62)


def test_guard_counts_the_rows_it_moved_and_surrogate_budgets_true_evaluations():
    guard = SafetyGuard(max_norm=1.0)
    repaired, changed = guard.repair_all(np.array([[3.0, 4.0], [0.1, 0.0], [0.0, 2.0]]))
    assert changed == 2
    np.testing.assert_allclose(np.linalg.norm(repaired, axis=1), [1.0, 0.1, 1.0], rtol=1e-6)
    run = minimize(rosenbrock, np.zeros(8), 0.5, surrogate="quadratic", max_evals=300, seed=1)
    assert run["stop"] == "max_evaluations" and 300 <= run["evaluations"] < 320


def test_an_objective_that_raises_stops_the_run_with_its_error():
    calls = []

    def broken(x):
        calls.append(1)
        if len(calls) > 30:
            raise RuntimeError("evaluator went away")
        return sphere(x)

    with pytest.raises(RuntimeError, match="evaluator went away"):
        minimize(broken, np.ones(3), 0.5, restarts="ipop")
    assert len(calls) == 31
    calls.clear()
    with pytest.raises(RuntimeError, match="evaluator went away"):
        minimize(broken, np.ones(3), 0.5, surrogate="knn")
    assert len(calls) == 31


def test_genetic_optimizer_runs_the_native_ga():
    opt = GeneticOptimizer(mutation_rate=0.3, mutation_scale=0.2)
    x, f = opt.optimize(lambda v: -sphere(v - 1.0), np.zeros(4), generations=60, popsize=30, maximize=True)
    assert f > -0.1 and np.abs(x - 1.0).max() < 0.3
    with pytest.raises(ValueError, match="generations"):
        opt.optimize(sphere, np.zeros(2), generations=0)


def test_guard_rail_repair_leaves_forbidden_regions():
    from paradox import GuardRail

    rail = GuardRail(max_norm=2.0, forbidden_regions=[np.array([1.0, 0.0])])
    fixed = rail.repair(np.array([1.1, 0.0]))
    assert rail.check(fixed) == (True, "Safe")
    assert rail.guard.max_norm == 2.0
