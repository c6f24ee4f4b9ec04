"""homeoplast benchmark suite: speed, scaling and peers, recorded as JSON.

Run ``python -m benchmarks --quick`` (``make bench``, under 10 minutes on 2 CPU cores) or
``python -m benchmarks --full`` (``make bench-full``). Each case runs in its own worker process
(clean JAX flags, dtype and device count, and a per-case peak-memory reading); results land in
``benchmarks/results/<label>.json`` with a figure beside them. Nothing outside ``benchmarks/``
imports this package.
"""
