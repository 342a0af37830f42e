"""The runner: one experiment variant start to finish, and the machinery around it."""
