"""Local development chain: Anvil process, demo token, funding."""
