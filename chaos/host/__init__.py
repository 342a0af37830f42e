"""This machine: its processes (``processes``: spawn, identify by /proc start time, stop
process trees, log tails) and the run folders and records that name them (``runs``), so
that ``tradechaos cleanup`` can find what a killed run left."""
