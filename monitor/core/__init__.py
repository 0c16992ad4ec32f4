"""The core: models, time, text, matching, configuration. Knows no database, network or UI."""
