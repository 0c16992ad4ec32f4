"""The database layer: the only code that runs SQL."""
