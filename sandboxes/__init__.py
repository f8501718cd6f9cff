"""Sandboxes: run untrusted model-written code under limits and return verdicts (Execution records)."""
