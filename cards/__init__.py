"""Jinja templates for dataset cards, model cards and leaderboard pages."""
