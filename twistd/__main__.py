"""``python -m twistd``"""

import sys

from twistd.cli import run

run()
