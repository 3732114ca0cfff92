"""Tools for testing societas itself: a scripted model, kill points and a fault-injecting proxy.

Nothing here is used by a normal run. :mod:`~societas.testing.scripted_model` backs the
``fake:`` model specification (deterministic answers that only follow the schema, for tests and
benchmarks of the engine), :mod:`~societas.testing.killpoints` lets a test make a process
SIGKILL itself at a chosen point, and :mod:`~societas.testing.faultproxy` sits in front of an
OpenAI-compatible server and breaks a share of its answers.
"""
