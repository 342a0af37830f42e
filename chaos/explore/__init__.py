"""``tradechaos explore``: search fault schedules for a violation, confirm it, shrink it to a
minimal regression experiment (docs/explore.md).

A loop around the runner that knows nothing of any stack:
``spaceload`` (the space: an experiment's ``explore:`` section, a SPACE.yaml, or
``defaults`` from the stack's ``names``) -> ``search`` (seeded proposals: random, coverage-
and signal-guided) -> ``trial`` (the seam to the runner; ``stacktrials`` is the real one)
-> ``signals`` (near misses from a History) -> ``confirm`` -> ``shrink`` -> ``report`` /
``html`` (minimal.yaml, explore.json, explore.html), driven by ``engine``.
"""
