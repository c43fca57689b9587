"""Session-scoped model fixtures (seeded random SAM weights, reference features).

Imported by tests/conftest.py so that every test directory can use them.
"""
