"""``python -m infer``: the homeoplast command line."""

from .cli import main

raise SystemExit(main())
