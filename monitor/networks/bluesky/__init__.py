"""Bluesky: its XRPC client, its source and its sender."""
