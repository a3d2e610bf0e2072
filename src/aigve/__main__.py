"""``python -m aigve`` is the ``aigve`` command."""

import sys

from aigve.cli import main

if __name__ == "__main__":
    sys.exit(main())
