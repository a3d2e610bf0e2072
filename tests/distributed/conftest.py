"""Fixtures of the distributed tests (defined in ``helpers``)."""

from tests.distributed.helpers import dataset, local_run, ray_env, ray_tmp, run_kwargs, videos  # noqa: F401
