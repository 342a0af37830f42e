"""What an export made of one variant (``chaos.k8s.export``), as its README and the
command's table show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chaos.k8s.workflow import Row


@dataclass
class Exported:
    experiment: str
    variant: str
    run_id: str
    out_dir: Path
    rows: list[Row]
    outside: list[str]
    objects: int
    files: list[Path] = field(default_factory=list)
