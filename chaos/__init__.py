"""tradechaos: a chaos-engineering fault injector for trading infrastructure.

The import package is ``chaos``; the command is ``tradechaos`` (``python -m chaos`` works too).
"""

__version__ = "0.1.0"
