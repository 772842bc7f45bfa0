"""Mutation fuzzing of dissect: see docs/fuzzing.md."""
