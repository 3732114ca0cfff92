"""Running societas on a Ray cluster (or a local Ray instance) when one machine is not enough.

- :mod:`~societas.distributed.session`: join a cluster or start a local Ray, quietly, with
  clear errors for a wrong or unreachable address.
- :mod:`~societas.distributed.pool`: independent model work (experiment arms, replicates,
  validity items) on a pool of workers, each opening its own model; results in a fixed order.
- :mod:`~societas.distributed.experiments`: ``societas experiment --ray``; the response tables
  equal a local run's, byte for byte, for the same seed and cache.
- :mod:`~societas.distributed.shards`: ``societas run --ray --shards K``: the town stays in
  this process, its model calls go to K shards, each agent always to the same one.
- :mod:`~societas.distributed.world`: ``societas run --ray --world-shards K``: the town's agents
  themselves are split over K actors that step in lockstep (see :mod:`societas.engine.sharding`),
  each with its own model; this process writes the run store.
"""
