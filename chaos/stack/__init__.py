"""The reference trading stack: the system under test (see DESIGN.md and docs/contracts.md).

Each service is its own process: ``python -m chaos.stack.<service> --port P ...``. The engine
never imports these modules except ``definition`` (the stack definition) and ``exporter``.
"""
