"""The recorded History of a run: typed records, streaming readers, and ground truth."""

from __future__ import annotations

from chaos.history.reader import History, HistoryError

__all__ = ["History", "HistoryError"]
