"""``python -m infer``: the homeoplast command line."""

from .cli import run

raise SystemExit(run())
