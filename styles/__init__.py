"""The stylesheets, installed as the package monitor.styles (see pyproject.toml)."""
