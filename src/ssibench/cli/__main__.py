"""``python -m ssibench.cli``: the same as the ``ssibench`` console script."""

import sys

from ssibench.cli import main

sys.exit(main())
