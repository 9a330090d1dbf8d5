"""Chat: the context a request carries, the stream that answers it, and what is kept."""
