"""The names a searched fault may act on, taken from the stack the experiment runs on.

``stack_names`` is the one place ``chaos.explore`` learns them: every other module of the
explorer receives a ``StackNames``: those of the experiment's stack file, resolved with the
options of the variant explored (the first one when none is named).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.experiment.model import Experiment
from chaos.experiment.params import KnownNames
from chaos.stackfile import load, resolve


@dataclass(frozen=True)
class StackNames:
    """Services, links and site labels of the stack, and how many venues quote prices."""

    services: tuple[str, ...]
    links: tuple[str, ...]
    sites: tuple[str, ...]
    venues: int

    @property
    def registry_names(self) -> KnownNames:
        """The same names as ``chaos.experiment.actions.validate_step`` takes them."""
        return KnownNames.of(self.services, self.links, self.sites)


def stack_names(experiment: Experiment, variant: str | None = None) -> StackNames:
    """The names of the stack ``experiment`` runs on (with the variant's options)."""
    chosen = experiment.variant(variant) if variant else experiment.variants[0]
    definition = resolve(load(experiment.stack.path), chosen.options, chosen.mitigations)
    venues = sum(definition.service(v).venues for v in definition.builtins("venues"))
    return StackNames(definition.service_names, definition.link_names, definition.sites, venues)
