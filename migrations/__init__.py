"""Numbered SQL migrations, installed as ``agentspace_gateway.migrations``.

Files are named ``NNNN_description.sql`` and are applied in order; an applied file is never
edited or renumbered: a change to the schema is a new file.
"""
