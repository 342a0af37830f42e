"""pytest plugin (entry point ``tradechaos``): experiment files as test items, and fixtures.

Kept import-light: nothing heavy is imported until an experiment item or fixture is used.
"""

from __future__ import annotations
