"""Operator tools: consumer groups, dead letters, dead jobs and secret rotation."""
