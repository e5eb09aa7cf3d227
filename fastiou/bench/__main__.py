"""``python -m fastiou.bench``: the same as ``fastiou bench``."""

import sys

from fastiou.bench.runner import main

sys.exit(main())
