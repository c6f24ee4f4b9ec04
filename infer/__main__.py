"""``python -m infer``: the homeoplast command line."""

from models.xla_flags import use_cpu_flags

use_cpu_flags()  # before JAX starts its backend (models/xla_flags.py)

from .cli import main  # noqa: E402

raise SystemExit(main())
