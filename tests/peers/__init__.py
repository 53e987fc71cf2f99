"""Real peers for tests, started on loopback with free ports and torn down.

Recipes follow ../shared/TOOLING.md. Each helper is a context manager so a
test (or a fixture) can never leave a process behind.
"""
