"""Chain adapters: `ChainClient` implementations that talk to a network's JSON-RPC endpoint."""
