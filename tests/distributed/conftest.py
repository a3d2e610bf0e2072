"""Fixtures of the distributed tests (defined in ``helpers``)."""

from tests.distributed.helpers import dataset, ray_env, ray_tmp, run_kwargs, videos  # noqa: F401
