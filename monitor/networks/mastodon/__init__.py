"""Mastodon: its API client, its HTML, its source and its sender."""
