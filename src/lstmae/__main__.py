"""``python -m lstmae``: the same command line as ``lstmae``."""

from lstmae.cli.app import run

run()
