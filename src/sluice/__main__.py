"""`python -m sluice` runs the command line."""

from sluice.cli import app

app()
