"""Measurements of a finished run that read its record or ask the agents (end-of-run questions).

One module per metric, each a function of the recorded events that the run summary, the
benchmarks and the viewer all call: ``news_spread`` (how far each news item travelled),
``awareness`` (what agents say they know against what they heard), ``network_density``,
``attendance`` (who came to each gathering), ``model_usage`` (what the model cost), bundled by
``run_summary`` and ``town_summary``; the graded figures (``diffusion``, ``acquaintance``,
``fact_grading``) and the coherence audit (``audit``) build on them.
"""
