"""The harm ledger: who lost how much in a run, from the History and the truth
(docs/harm.md). ``harm_ledger(history, params) -> HarmLedger``."""

from chaos.harm.ledger import KINDS, HarmLedger, harm_ledger, journal_section

__all__ = ["KINDS", "HarmLedger", "harm_ledger", "journal_section"]
