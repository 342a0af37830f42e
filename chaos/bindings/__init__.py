"""Bindings at work: the engine's only ways to talk to a stack, driven by its stack file
(``chaos.stackfile.bindings``): orders, accounts, trading mode, SQL reads and the history
export. Each module acts on one binding; ``places`` finds where the running parts are."""
