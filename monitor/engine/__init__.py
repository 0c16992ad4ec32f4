"""The engine: runs the sources and the senders, and writes through the database layer."""
