"""``python -m mktap``"""

import sys

from mktap.cli import run

run()
