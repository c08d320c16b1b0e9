"""Throughput, latency, memory and scaling of jobqueue, side by side with its peers.

Run ``uv run --group bench python -m tests.benchmarks [--quick] [--only NAME ...]``;
see ``docs/benchmarks.md``.
"""
