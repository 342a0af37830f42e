"""The suite's own layout: one pytest session collects every folder of tests/ (make test),
with each folder on sys.path by its basename (rootdir-relative imports, no packages), so
two test modules with one basename stop the whole session at collection."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_basename_is_unique_across_the_folders() -> None:
    homes: dict[str, list[str]] = defaultdict(list)
    for path in sorted(TESTS.rglob("*.py")):
        if "data" in path.relative_to(TESTS).parts[:1]:
            continue  # plug-ins and vendored validators: imported by path, not collected
        homes[path.name].append(str(path.relative_to(TESTS)))
    shared = {
        name: where
        for name, where in homes.items()
        if len(where) > 1 and name not in ("__init__.py", "conftest.py")
    }
    assert shared == {}, f"one basename in several folders: {shared}"
