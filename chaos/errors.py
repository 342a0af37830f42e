"""One exception hierarchy. The CLI maps each class to an exit code (see ``exit_code``).

Exit codes (README, ``tradechaos --help``): 0 every variant met its expectation; 1 an
expectation was not met; 2 bad input or usage; 3 infrastructure failure; 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_EXPECTATION_NOT_MET = 1
EXIT_BAD_INPUT = 2
EXIT_INFRASTRUCTURE = 3
EXIT_INTERRUPTED = 130


class ChaosError(Exception):
    """Base of every error tradechaos raises on purpose. ``str(err)`` is one clear sentence."""

    exit_code = EXIT_INFRASTRUCTURE


class BadInput(ChaosError):
    """The user gave something unusable: a file, an argument, an API request."""

    exit_code = EXIT_BAD_INPUT


class InvalidFile(BadInput):
    """A file the user wrote failed to load or validate.

    The message has the form ``FILE:LINE: FIELD: problem (allowed: ...)``.
    """

    def __init__(self, path: str, line: int | None, field: str, problem: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        prefix = f"{where}: {field}: " if field else f"{where}: "
        super().__init__(prefix + problem)


class InvalidExperiment(InvalidFile):
    """An experiment file failed to load or validate."""


class InvalidStack(InvalidFile):
    """A stack file failed to load or validate (docs/stack-file.md)."""


class InvalidCompose(InvalidFile):
    """A Compose file (``tradechaos stack import``) could not be read or understood."""


class UsageError(BadInput):
    """A command-line argument is wrong."""


class InfrastructureError(ChaosError):
    """Something the run depends on failed: a service, the proxy, the database, docker."""

    exit_code = EXIT_INFRASTRUCTURE


class StackError(InfrastructureError):
    """The stack did not start, a service did not become healthy, or it died unexpectedly."""


class ProxyError(InfrastructureError):
    """The proxy (embedded or a real Toxiproxy) is unreachable or refused a request."""


class FaultError(InfrastructureError):
    """A fault could not be injected or healed."""


class Interrupted(ChaosError):
    """The run was stopped by SIGINT or SIGTERM; everything was healed and stopped."""

    exit_code = EXIT_INTERRUPTED


class ExpectationNotMet(ChaosError):
    """A variant's verdicts differ from what its experiment expected."""

    exit_code = EXIT_EXPECTATION_NOT_MET


def exit_code(err: BaseException) -> int:
    """The process exit code for an error that reached the command line."""
    if isinstance(err, ChaosError):
        return err.exit_code
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_INFRASTRUCTURE
