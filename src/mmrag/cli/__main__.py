"""python -m mmrag.cli"""

import sys

from . import main

sys.exit(main())
