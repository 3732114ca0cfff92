"""How an agent thinks: each step of cognition is one module built on the language-model facade.

- ``importance``: batched 1-10 ratings of new memories, with rules and a memo for routine ones.
- ``reflection``: insights drawn from recent memories in at most two model calls.
- ``planning``: day plans, their refinement into actions, and revisions.

Prompts live in ``prompts/*.yaml`` beside the modules (see :mod:`societas.prompts`).
"""
