"""Signer adapters: `Signer` implementations that hold a hot wallet's key and sign with it."""
