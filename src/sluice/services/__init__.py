"""Use cases and worker stages. Services take ports, never commit, and never do I/O themselves
beyond what their ports do."""
