"""Sluice: a withdrawal engine for custodial crypto platforms."""

__version__ = "0.2.0"
