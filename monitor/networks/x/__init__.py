"""X (Twitter): recent search and the city's mentions, paced by a monthly budget; replies."""
