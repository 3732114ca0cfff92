"""Scenarios: a world's map and places together with the people who live in it and their news.

The package holds the built-in scenario files ("town", "duo"; load them with
``societas.scenarios.scenario.load_scenario(name)``), the scenario model and its checks, and
:mod:`~societas.scenarios.gridtown`, which builds synthetic towns of any size. Residents are
personas, so this layer sits above ``agents`` and below ``engine``.
"""
