"""The compose topology as local processes: what `make run` starts, and what the tests and the benchmark start.

Its modules, a line each, are listed once: in docs/architecture.md ("Every module").
"""
