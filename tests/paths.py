"""Where the tests find the checkout, their files and the benchmark scripts, wherever a test module sits in tests/."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent  # tests/
ROOT = TESTS.parent  # the checkout
FILES = TESTS / "files"  # what the tests read: model files of earlier versions, panels, metric oracles
BENCH = ROOT / "bench"
