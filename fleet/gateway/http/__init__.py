"""The gateway over HTTP: OpenAI- and Anthropic-compatible endpoints for agents we did not write."""
