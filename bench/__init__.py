"""Benchmarks: programs that print figures about the real processes. Not tests."""
