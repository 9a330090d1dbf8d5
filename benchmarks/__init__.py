"""The benchmark suite: a real ``serve`` process and the fake Anthropic upstream, on loopback.

Run it with ``tox -e bench`` (or ``python -m benchmarks`` from the repository root). It
prints one table and writes ``benchmarks/results/latest.json``; docs/performance.md says
what each figure means and what was done about it.
"""
