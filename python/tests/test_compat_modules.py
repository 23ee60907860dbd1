"""The paradoxlf 0.17 modules beside the engine: mixer, temporal, simulation, media,
visualization, distributed, evolution, autonomous, safety."""

import importlib
import sys

import numpy as np
import pytest

from paradox import LatentMemoryEngine
from paradox.mixer import ParadoxMixer
from paradox.simulation import SimulationEnv, simple_gravity_well
from paradox.temporal import LatentTrajectory


def test_mixer_operations():
    a, b, c = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([2.0, 2.0])
    np.testing.assert_allclose(ParadoxMixer.interpolate(a, b, 0.25), [0.75, 0.25])
    np.testing.assert_allclose(ParadoxMixer.add(a, b), [1, 1])
    np.testing.assert_allclose(ParadoxMixer.subtract(a, b), [1, -1])
    np.testing.assert_allclose(ParadoxMixer.analogy(a, b, c), b - a + c)
    np.testing.assert_allclose(ParadoxMixer.interpolate([1, 0], [0, 1]), [0.5, 0.5])
    np.random.seed(0)
    noisy = ParadoxMixer.noise(np.zeros(1000), magnitude=0.1)
    assert noisy.shape == (1000,) and 0.08 < noisy.std() < 0.12


def test_trajectory_at_both_module_paths():
    from paradox.media.temporal import LatentTrajectory as MediaTrajectory

    assert MediaTrajectory is LatentTrajectory
    t = LatentTrajectory([[0, 0], [1, 0], [2, 0], [2, 1]])
    np.testing.assert_allclose(t.velocity(), [[1, 0], [1, 0], [0, 1]])
    np.testing.assert_allclose(t.speed(), [1, 1, 1])
    np.testing.assert_allclose(t.predict_next(2), [[2, 2], [2, 3]])
    np.testing.assert_allclose(t.predict_next(1, method="average"), [[2 + 2 / 3, 1 + 1 / 3]], rtol=1e-6)
    assert t.curvature() == pytest.approx(np.pi / 4)
    assert LatentTrajectory([[0, 0], [1, 1]]).curvature() == 0.0
    with pytest.raises(ValueError):
        LatentTrajectory([[0, 0]])
    with pytest.raises(ValueError, match="Unknown method"):
        t.predict_next(1, method="spline")


def test_simulation_step_and_run_with_callback():
    engine = LatentMemoryEngine(dimension=2)
    engine.add([10.0, 0.0])
    engine.add([0.0, 10.0])
    sim = SimulationEnv(engine)
    assert sim.running is False
    sim.step(simple_gravity_well, dt=1.0)
    np.testing.assert_allclose(engine.vectors, [[9, 0], [0, 9]], rtol=1e-6)
    seen = []

    def callback(i, eng):
        seen.append((i, sim.running))
        if i == 2:
            sim.running = False

    sim.run(10, simple_gravity_well, dt=1.0, callback=callback)
    assert seen == [(0, True), (1, True), (2, True)]
    assert sim.running is False
    np.testing.assert_allclose(engine.vectors[0], [9 * 0.9**3, 0], rtol=1e-5)
    # The index follows the simulation.
    assert engine.query([0.0, 9 * 0.9**3], k=1)[0][0] == 1
    assert engine.query([0.0, 9 * 0.9**3], k=1)[0][1] == pytest.approx(0.0, abs=1e-5)


def test_simulation_parallel_matches_serial(rng):
    a, b = LatentMemoryEngine(dimension=4), LatentMemoryEngine(dimension=4)
    for v in rng.standard_normal((100, 4)):
        a.add(v)
        b.add(v)
    SimulationEnv(a).step(simple_gravity_well, parallel=False)
    SimulationEnv(b).step(simple_gravity_well, parallel=True)
    np.testing.assert_allclose(a.vectors, b.vectors)


def test_media_imports_without_heavy_dependencies():
    for heavy in ("torch", "transformers", "sentence_transformers"):
        sys.modules.pop(heavy, None)
    media = importlib.import_module("paradox.media")
    assert {
        "SimpleTextEncoder",
        "TransformerTextEncoder",
        "CLIPEncoder",
        "SimpleImageEncoder",
        "SimpleImageDecoder",
        "SimpleVideoEncoder",
        "SimpleVideoDecoder",
        "latent_interpolate",
        "LatentTrajectory",
    } <= set(media.__all__)
    assert "torch" not in sys.modules and "transformers" not in sys.modules
    vec = media.SimpleTextEncoder(dimension=8).encode("hello")
    assert vec.shape == (8,) and np.linalg.norm(vec) == pytest.approx(1.0)
    frames = media.latent_interpolate(np.zeros(3), np.ones(3), steps=5)
    np.testing.assert_allclose(frames[:, 0], [0, 0.25, 0.5, 0.75, 1])


def test_image_round_trip_when_pillow_is_installed():
    pytest.importorskip("PIL")
    from PIL import Image

    from paradox.media import SimpleImageDecoder, SimpleImageEncoder, SimpleVideoEncoder

    img = Image.new("RGB", (8, 8), (255, 0, 0))
    vec = SimpleImageEncoder(4, 4).encode(img)
    assert vec.shape == (48,) and vec[0] == pytest.approx(1.0)
    assert SimpleImageDecoder(4, 4).decode(vec).size == (4, 4)
    assert SimpleVideoEncoder(4, 4).encode([img, img]).shape == (2, 48)


def test_visualizer_small_memory_returns_vectors():
    from paradox import LatentVisualizer

    engine = LatentMemoryEngine(dimension=3)
    engine.add([1, 2, 3])
    out = LatentVisualizer(engine).reduce_dimensions(n_components=2)
    np.testing.assert_array_equal(out, [[1, 2, 3]])


def test_cluster_round_robin_and_merged_query(rng):
    from paradox.distributed import LatentCluster

    cluster = LatentCluster(dimension=4, num_shards=3)
    vectors = rng.standard_normal((30, 4)).astype(np.float32)
    for i, v in enumerate(vectors):
        cluster.add(v, {"i": i})
    assert cluster.total_count == 30
    assert [s.count() for s in cluster.shards] == [10, 10, 10]
    hits = cluster.query(vectors[7], k=4)
    assert len(hits) == 4 and hits[0][2]["i"] == 7
    assert hits[0][0] == 7 // 3  # per-shard id, as in 0.17
    dists = np.linalg.norm(vectors - vectors[7], axis=1)
    np.testing.assert_allclose([h[1] for h in hits], np.sort(dists)[:4], rtol=1e-4, atol=1e-5)
    assert cluster.solve_analogy_distributed(vectors[1], vectors[2], vectors[2], k=1)[0][2]["i"] == 1
    assert cluster.retrieve_vector("x") is None


def test_cluster_with_zero_shards_is_a_clear_error():
    from paradox.distributed import LatentCluster

    with pytest.raises(ValueError, match="num_shards"):
        LatentCluster(num_shards=0)


def test_shard_and_consensus():
    from paradox.distributed import LatentConsensus, LatentShard

    shard = LatentShard(dimension=2)
    assert len(shard.id) == 8 and shard.count() == 0
    shard.add([1.0, 1.0])
    assert shard.query([1.0, 1.0], k=1)[0][0] == 0
    assert LatentConsensus.average_consensus([]) is None
    np.testing.assert_allclose(LatentConsensus.average_consensus([[0, 0], [2, 2]]), [1, 1])
    np.testing.assert_allclose(LatentConsensus.weighted_consensus([[0, 0], [4, 4]], [3, 1]), [1, 1])
    with pytest.raises(ValueError):
        LatentConsensus.weighted_consensus([[0, 0]], [1, 2])
    center, outliers = LatentConsensus.detect_outliers([[0, 0], [0.1, 0], [0, 0.1], [5, 5]], threshold=3.0)
    assert outliers == [3]
    np.testing.assert_allclose(center, [1 / 30, 1 / 30], atol=1e-9)


def test_edge_node_in_process_cloud():
    from paradox.distributed import EdgeNode, LatentShard

    cloud = LatentShard(dimension=2)
    edge = EdgeNode(local_dim=2, cloud=cloud)
    assert edge.perceive([0.0, 0.0])["status"] == "Novel (Synced)"
    known = edge.perceive([0.1, 0.0])
    assert known["status"] == "Known" and known["novelty_score"] == pytest.approx(0.1, abs=1e-6)
    assert cloud.count() == 1
    assert edge.query_hybrid([0.0, 0.1], k=1)[0][0] == 0
    assert edge.sync_all() == 1 and cloud.count() == 2


def test_evolution_safety_and_agent():
    from paradox import AutoAgent, GeneticOptimizer, GuardRail
    from paradox.evolution import ObjectiveFunction

    np.random.seed(1)
    opt = GeneticOptimizer(mutation_rate=1.0, mutation_scale=0.0)
    a, b = np.zeros(3), np.ones(3)
    c1, c2 = opt.crossover(a, b)
    np.testing.assert_allclose(c1 + c2, [1, 1, 1])
    np.testing.assert_allclose(opt.mutate(a), a)
    assert ObjectiveFunction.novelty_score(np.ones(2), []) == 1.0
    assert ObjectiveFunction.novelty_score(np.array([3.0, 4.0]), [np.zeros(2)]) == pytest.approx(5.0)
    assert ObjectiveFunction.coherence_score(np.array([1.0, 0.0])) == pytest.approx(1.0)
    guard = GuardRail(max_norm=1.0, forbidden_regions=[np.array([0.5, 0.0])])
    assert guard.check(np.array([3.0, 4.0]))[0] is False
    assert guard.check(np.array([0.6, 0.0])) == (False, "Forbidden Concept Proximity")
    assert guard.check(np.array([0.0, 0.9])) == (True, "Safe")
    np.testing.assert_allclose(guard.sanitize(np.array([3.0, 4.0])), [0.6, 0.8])
    agent = AutoAgent(dim=8)
    for _ in range(20):
        agent.evolution_step()
    assert agent.memory.count >= 1
    assert all(attrs["origin"] == "evolution" for attrs in agent.memory.objects.values())
    assert np.linalg.norm(agent.memory.vectors, axis=1).max() <= 3.0 + 1e-5
