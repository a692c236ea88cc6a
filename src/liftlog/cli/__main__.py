"""``python -m liftlog.cli``: the same as the ``liftlog`` command."""

import sys

from liftlog.cli import main

sys.exit(main())
