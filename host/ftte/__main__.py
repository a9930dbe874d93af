"""`python -m ftte ...` is the `ftte` command."""

import sys

from ftte.cli import main

sys.exit(main())
