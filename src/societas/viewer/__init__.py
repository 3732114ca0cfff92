"""The run viewer: watch a town live or replay any run in the browser (``societas serve DIR``).

- ``app``: the FastAPI application (JSON API + static front end), built by ``create_app``.
- ``store``: read-only access to a run (``run.sqlite`` through the engine's read-only
  :class:`~societas.engine.run_reader.RunReader`, ``summary.json`` and, through
  ``run_scenario``, the scenario copy the town panel measures against).
- ``timeline``, ``agent_view``, ``town_view``: what the map, agent panel and town panel show.
- ``live``: server-sent progress events while a run is being written.
- ``guards``, ``cache``: request limits, security headers and the response cache.
- ``static/``: the page itself (plain HTML, CSS and JavaScript modules; nothing loaded from
  elsewhere).
"""
