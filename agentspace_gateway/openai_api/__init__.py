"""OpenAI's chat completions API on the gateway's port, for OpenAI-shaped tools
(docs/openai-and-local-models.md)."""
