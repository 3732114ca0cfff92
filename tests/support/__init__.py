"""Helpers only the tests use (importable as ``support``: pytest puts ``tests/`` on the path).

:mod:`support.faultproxy` sits in front of an OpenAI-compatible server and breaks a share of its
answers. Helpers that the benchmarks share with the tests stay in :mod:`societas.testing`.
"""
