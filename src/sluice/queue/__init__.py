"""Queue adapters behind one contract (memory, Redis Streams, SQS), and priority lanes over them."""
