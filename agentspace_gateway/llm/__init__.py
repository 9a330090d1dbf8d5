"""The Anthropic side: one SDK client per app, and its failures in the gateway's vocabulary."""
