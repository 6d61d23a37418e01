"""``python -m lstmae``: the same command line as ``lstmae``."""

from lstmae.cli import run

run()
