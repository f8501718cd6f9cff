"""Benchmarks: suites, metrics, leaderboard; speed/ holds system speed benchmarks."""
