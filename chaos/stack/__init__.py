"""The reference trading stack: the system under test that ships with tradechaos (see
docs/contracts.md). It is a plug-in like any other: ``stack.yaml`` beside this file is its
stack file, and the engine reaches it only through that file (its commands, links and
bindings); no module of the engine imports this package (``make lint`` checks it).

Each service is its own process: ``python -m chaos.stack.<service> --port P ...``.
"""
