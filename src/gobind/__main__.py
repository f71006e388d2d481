"""python -m gobind: the gobind command."""

from .cli import main

raise SystemExit(main())
