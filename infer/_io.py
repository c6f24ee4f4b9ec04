"""Atomic file writing: results appear whole or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success only."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; move it onto ``target`` on success only."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_report_dir(
    out_dir: str | os.PathLike,
    stem: str,
    result: dict,
    plot: Callable[[dict, Path], dict[str, str]],
    render: Callable[[dict, dict[str, str]], str],
) -> Path:
    """Write ``{stem}.json`` (the result), the figures ``plot(result, dir)`` makes and the
    markdown ``render(result, figures)`` into ``out_dir``, replacing it whole, all or nothing.
    Returns the markdown's path."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / f"{stem}.json").write_text(json.dumps(result, indent=1))
        figures = plot(result, tmp)
        (tmp / f"{stem}.md").write_text(render(result, figures))
    return out_dir / f"{stem}.md"
