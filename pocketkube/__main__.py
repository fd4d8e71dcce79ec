"""`python -m pocketkube` is the `pocketkube` command."""

from .cli import main

raise SystemExit(main())
