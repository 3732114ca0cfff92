"""societas: societies of generative agents for simulation and social-science experiments.

The package layout is the architecture:

- ``societas.llm``: one async interface to language models (embedded llama.cpp, OpenAI-compatible
  servers), with caching, metering and structured outputs.
- ``societas.memory``: each agent's memory stream and its retrieval.
- ``societas.world``: places, the tile map, routines and the world's state.
- ``societas.agents``: personas and cognition (importance, reflection, planning, reaction,
  dialogue).
- ``societas.scenarios``: scenario files (a world with its residents, news and gatherings).
- ``societas.engine``: the simulation loop, the run store, snapshots and forks.
- ``societas.measurement``: the figures read from a recorded run (news spread, network density,
  attendance, model usage, graded answers, the coherence audit).
- ``societas.cli``: the ``societas`` command.
"""

__version__ = "0.1.0"
