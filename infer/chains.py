"""NUTS chains in worker processes, one per CPU core (``engine.chain_method = "processes"``).

XLA's CPU runtime runs each computation on a pool of threads. A population fit's gradient is
small (tens of ms at a few neurons), so much of that pool's time is synchronisation, and two
chains in threads of one process (``"threads"``) contend for the same cores. Here each chain
runs in its own process, pinned to one core with XLA's intra-op parallelism off, through the
same compiled NUTS block program as the other chain methods (:class:`infer.engines.ChunkedNUTS`).
Measured on the idle 2-core Intel Xeon host (2026-12-06, benchmarks/README.md): the demo fit's
gradient takes 34 ms in one unpinned process and 29.5 ms in each of two pinned processes at
once, 2.3x the throughput.

Each worker rebuilds the fit's model from its config and problem (sent pickled, so it is the
same model whatever data the parent loaded), compiles the NUTS programs once and then serves
requests: start a chain, advance it n transitions. States travel as NumPy trees, the form the
checkpoint stores, so checkpointing and resuming work as for the other chain methods.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import traceback
import weakref

import numpy as np

# XLA flags of a worker: one intra-op thread (the process has one core to itself).
WORKER_XLA_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")


def _cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@contextlib.contextmanager
def _worker_environment():
    """XLA_FLAGS for the processes started inside (a spawned child copies the environment
    when it starts; this process's own XLA backend read its flags long before)."""
    before = os.environ.get("XLA_FLAGS")
    flags = [f for f in (before or "").split() if not f.startswith(("--xla_cpu_multi", "intra_op"))]
    os.environ["XLA_FLAGS"] = " ".join([*flags, *WORKER_XLA_FLAGS])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = before


def _serve(conn, payload: bytes, core: int | None, x64: bool) -> None:
    """A worker's main loop (runs in the child process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    try:
        import jax

        jax.config.update("jax_platforms", "cpu")
        jax.config.update("jax_enable_x64", x64)
        from .engines import ChunkedNUTS, _strong
        from .fit import Fit

        config, problem, generative_only, chunk = pickle.loads(payload)
        fit = Fit.create(config, problem, generative_only=generative_only)
        driver = ChunkedNUTS(fit.model, config.replace(chain_method="sequential"), chunk)
    except Exception:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            request, *args = conn.recv()
        except EOFError:  # the parent has gone
            return
        if request == "stop":
            return
        try:
            if request == "init":
                start, key, inverse_mass = args
                driver._init_traced = True
                state = driver._init(_strong(jax.device_put(start)), key, inverse_mass)
                conn.send(("ok", jax.device_get(state)))
            elif request == "advance":
                state, n = args
                if not driver._init_traced:  # resumed: hmc() stores settings at init
                    jax.eval_shape(
                        driver._init_one, driver._z0, jax.random.PRNGKey(0), driver._identity_mass()
                    )
                    driver._init_traced = True
                state, buffer = driver._block(jax.device_put(state), n)
                buffer = jax.tree_util.tree_map(lambda b, n=n: np.asarray(b)[:n], buffer)
                conn.send(("ok", (jax.device_get(state), buffer)))
            else:
                raise ValueError(f"unknown request {request!r}")
        except Exception:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


def _stop(processes, connections) -> None:
    for conn in connections:
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send(("stop",))
            conn.close()
    for proc in processes:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()


class ProcessChains:
    """One worker process per chain, started on first use and kept for later runs of the
    same driver (a second fit reuses the compiled programs); chain i is pinned to the i-th
    core this process may use, round robin when there are more chains than cores."""

    def __init__(self, model, config, chunk: int):
        self.model, self.config, self.chunk = model, config, chunk
        self._procs: list = []
        self._conns: list = []
        self._finalizer = None

    def _start(self) -> None:
        import jax

        payload = pickle.dumps(
            (self.model.config, self.model.problem, self.model.generative_only, self.chunk)
        )
        cores = _cores()
        pin = len(cores) > 1
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs XLA
        x64 = bool(jax.config.read("jax_enable_x64"))
        with _worker_environment():
            for i in range(self.config.chains):
                parent, child = ctx.Pipe()
                core = cores[i % len(cores)] if pin else None
                proc = ctx.Process(
                    target=_serve, args=(child, payload, core, x64), daemon=True, name=f"chain-{i}"
                )
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
        self._finalizer = weakref.finalize(self, _stop, self._procs, self._conns)
        for i in range(len(self._conns)):
            self._receive(i)  # "ready" (model built) or the worker's error

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._procs, self._conns, self._finalizer = [], [], None

    def _receive(self, i: int):
        try:
            kind, value = self._conns[i].recv()
        except (EOFError, OSError):
            code = self._procs[i].exitcode
            self.close()
            raise RuntimeError(
                f"NUTS chain {i}'s worker process exited (exit code {code}; out of memory?); "
                "the checkpointed draws are kept: rerun with resume, or set "
                "engine.chain_method = 'threads'"
            ) from None
        if kind == "error":
            self.close()
            raise RuntimeError(f"NUTS chain {i}'s worker process failed:\n{value}")
        return value

    def _ask(self, requests: list[tuple]) -> list:
        if not self._procs:
            self._start()
        try:
            for conn, request in zip(self._conns, requests, strict=True):
                conn.send(request)
            return [self._receive(i) for i in range(len(requests))]
        except KeyboardInterrupt:
            self.close()  # the workers are mid-request: never reuse them
            raise

    def init(self, starts: list[dict], keys: list, inverse_mass) -> list:
        """One initial state per chain (NumPy trees)."""
        inv = np.asarray(inverse_mass)
        return self._ask(
            [
                ("init", {k: np.asarray(v) for k, v in s.items()}, np.asarray(k), inv)
                for s, k in zip(starts, keys, strict=True)
            ]
        )

    def advance(self, states: list, n: int) -> tuple[list, list]:
        """Run n transitions of every chain: (new states, per-chain records)."""
        import jax

        out = self._ask([("advance", jax.device_get(s), n) for s in states])
        return [o[0] for o in out], [o[1] for o in out]
