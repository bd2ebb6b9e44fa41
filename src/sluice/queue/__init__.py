"""Queue adapters behind one contract: in-memory now; Redis Streams and SQS later."""
