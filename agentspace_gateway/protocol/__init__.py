"""The WebSocket protocol: typed messages, the fixed error vocabulary, and the wire codec."""
