"""``python -m infer``: the homeoplast command line."""

from .cli import main

if __name__ == "__main__":  # not when a worker process (infer/chains.py) imports it
    raise SystemExit(main())
