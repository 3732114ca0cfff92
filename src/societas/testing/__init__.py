"""Harnesses shared by the crash tests and ``benchmarks/kills.py``; no production code imports them.

:mod:`~societas.testing.cli_process` forks ``societas`` commands from a preloaded server so a
test can start and SIGKILL many of them; :mod:`~societas.testing.random_kills` and
:mod:`~societas.testing.experiment_kills` kill runs, resumes and experiments at random moments
and compare the results with uninterrupted ones. The fail points they aim at are production
code (:mod:`societas.failpoints`), and the scripted ``fake:`` model lives in
:mod:`societas.llm.fake`.
"""
