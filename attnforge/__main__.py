"""``python -m attnforge``: the same CLI as the ``attnforge`` script."""

import sys

from attnforge.cli.main import main

sys.exit(main())
