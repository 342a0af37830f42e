"""The benchmarks (``make bench``; ``bench/__main__.py`` says how they run)."""

import sys as _sys
from pathlib import Path as _Path

# the tests' helpers (TCP servers, our proxy and the real Toxiproxy as child processes)
TEST_SUPPORT = _Path(__file__).resolve().parents[1] / "tests" / "integration"
if str(TEST_SUPPORT) not in _sys.path:
    _sys.path.insert(0, str(TEST_SUPPORT))
