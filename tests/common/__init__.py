"""Tests of the shared kit (stacksense_common)."""
