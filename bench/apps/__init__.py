"""Benchmark applications: the same routes for every server interface."""
