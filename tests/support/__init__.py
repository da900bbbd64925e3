"""What the tests share besides fixtures (those are in the conftest.py files).

Its modules, a line each, are listed once: in docs/architecture.md ("Every module").
"""
