"""Benchmark cases. Each ``run(spec)`` yields JSON-ready records; they run inside a worker
process (:mod:`benchmarks.worker`) whose JAX precision and device count the spec fixes."""
