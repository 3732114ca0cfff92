"""Measurements of a finished run that ask the agents (end-of-run questions) or read its record."""
