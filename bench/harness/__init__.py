"""Benchmark harness for Paradox: runs the `paradox bench` CLI and Python peers side by side.

Core benchmarks (`core.py`): `core_benchmarks` (ingest, scan, batch, legacy), `machine` (what
the numbers were measured on), `datasets` (seeded synthetic data on disk), `paradox_cli`
(build and call the `paradox` binary), `peers` (FAISS and paradoxlf), `gemm` (the SGEMM
ceiling), `quality` (result agreement), `report` (table, JSON, chart).
"""
