"""Benchmarks are run by ``python -m tests.benchmarks``, never by pytest."""

collect_ignore_glob = ["*.py"]
