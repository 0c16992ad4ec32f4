"""Statistics, reports and exports, read from the database layer."""
