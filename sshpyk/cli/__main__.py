"""``python -m sshpyk.cli``, as ``sshpyk``."""

import sys

from . import main

sys.exit(main())
