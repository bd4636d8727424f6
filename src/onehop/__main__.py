"""``python -m onehop``: the same entry point as the ``onehop`` console script."""

from onehop.cli import main

raise SystemExit(main())
