"""The names a searched fault may act on, taken from the stack the experiment runs on.

``stack_names`` is the one place ``chaos.explore`` learns them: every other module of the
explorer receives a ``StackNames``. While the stack's description moves into stack files
(issue 14) only this function changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.experiment import catalog
from chaos.experiment.model import Experiment
from chaos.faults.registry import KnownNames


@dataclass(frozen=True)
class StackNames:
    """Services, links and site labels of the stack, and how many venues quote prices."""

    services: tuple[str, ...]
    links: tuple[str, ...]
    sites: tuple[str, ...]
    venues: int

    @property
    def registry_names(self) -> KnownNames:
        """The same names as ``chaos.faults.registry.validate_step`` takes them."""
        return KnownNames.of(self.services, self.links, self.sites)


def stack_names(experiment: Experiment) -> StackNames:
    """The names of the stack ``experiment`` runs on (with its stack options)."""
    known = catalog.known_names(standby=experiment.stack.standby, venues=experiment.stack.venues)
    return StackNames(known.services, known.links, known.sites, experiment.stack.venues)
