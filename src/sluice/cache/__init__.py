"""Caches in front of the database: never the authority, always safe to lose."""
