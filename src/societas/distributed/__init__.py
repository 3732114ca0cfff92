"""Running societas on a Ray cluster (or a local Ray instance) when one machine is not enough.

- :mod:`~societas.distributed.ray_options`: the ``--ray``, ``--model-servers``, ``--world-shards``
  and ``--workers`` options the commands share.
- :mod:`~societas.distributed.session`: join a cluster or start a local Ray, quietly, with
  clear errors for a wrong or unreachable address.
- :mod:`~societas.distributed.model_workers`: independent model work (experiment arms, replicates,
  validity items) on a pool of workers, each opening its own model; results in a fixed order.
- :mod:`~societas.distributed.experiments`: ``societas experiment --ray``; the response tables
  equal a local run's, byte for byte, for the same seed and cache.
- :mod:`~societas.distributed.model_servers`: ``societas run --ray --model-servers K``: the town
  stays in this process, its model calls go to K model servers, each agent always to the same one.
- :mod:`~societas.distributed.world_shards`: ``societas run --ray --world-shards K``: the town's
  agents themselves are split over K world shards that step in lockstep (see
  :mod:`societas.engine.sharding`), each with its own model; this process writes the run store.

"Shard" means only the second: a part of the world's agents stepped by its own process.
"""
