"""Where a run's processes go: the ``cluster`` config group.

A run has one driver (the process running the recipe). Training stages on more than one device
run in worker groups the cluster starts for each stage and that exit when it is done; generation
phases with ``rollout.workers`` > 1 run on shards the cluster places, one per device.

- ``cluster=local`` (tripost/cluster/local.py): this machine, or the ranks ``torchrun``/``srun``
  started (rank 0 drives, the others start their share of every training stage);
- ``cluster=ray`` (tripost/cluster/ray_cluster.py): Ray actors on a Ray cluster, any number of nodes.
"""

from tripost.cluster.base import Cluster, Shard

__all__ = ["Cluster", "Shard"]
