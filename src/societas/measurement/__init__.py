"""Metrics read from a recorded run (its event log and scenario), computed without a model."""
