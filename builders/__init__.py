"""Builders: task sources, sampling, CodeLutra pairs, releases."""
