"""Test support shipped with the package: fixtures and helpers that tests share."""
