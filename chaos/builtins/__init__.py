"""Parts tradechaos provides to any stack (``builtin:`` in a stack file): a PostgreSQL
server (``postgres``) and the world's venues (``venues``). They run as services of the
stack, started by the backends like any other, from tradechaos's own modules."""
