"""Scenario files shipped with societas ("town", "duo"); load them with
``societas.world.scenario.load_scenario(name)``."""
