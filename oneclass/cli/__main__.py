"""``python -m oneclass.cli``."""

import sys

from oneclass.cli import main

sys.exit(main())
