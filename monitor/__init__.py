"""monitor: a terminal console for a city's social-media duty desk."""

__version__ = "0.1.0"
