"""`make bench`: the benchmark (see bench/run.py). Not tests: pytest does not collect it."""
