"""Checkpoints: every file a metric uses, bound to URLs, hash, size, license and preprocessing.

One module per job:

- :mod:`~aigve.weights.spec` — :class:`WeightSpec` rows, the registry table (``registry.json``);
- :mod:`~aigve.weights.places` — environment variables, the weights cache folder, "where to put it";
- :mod:`~aigve.weights.hashing` — digests, the digest cache, the trust-on-first-use lock;
- :mod:`~aigve.weights.resolve` — the resolution order, :class:`ResolvedWeights`;
- :mod:`~aigve.weights.download` — downloads into the cache, verified before they are renamed into place;
- :mod:`~aigve.weights.load` — safe state-dict reading and :func:`load_into`, the one load sequence;
- :mod:`~aigve.weights.inventory` — list / fetch / verify / import for the ``aigve weights`` commands;
- :mod:`~aigve.weights.usage` — which entries the metric catalogue uses (the rest are marked ``planned``).
"""

from __future__ import annotations

from aigve.weights.download import ProgressCallback
from aigve.weights.hashing import TOFU_WARNING, cached_sha256, file_digests, lock_path
from aigve.weights.inventory import (
    FetchResult,
    ImportResult,
    VerifyResult,
    fetch,
    import_dir,
    list_weights,
    verify,
)
from aigve.weights.load import (
    LoadedWeights,
    fetch_hint,
    load_into,
    load_state_dict,
    resolve_for_backbone,
)
from aigve.weights.places import ENV_CACHE_DIR, ENV_MIRROR, ENV_OFFLINE, ENV_WEIGHTS_DIR, cache_dir
from aigve.weights.resolve import ResolvedWeights, resolve_weights
from aigve.weights.spec import (
    HASH_KINDS,
    PackageSource,
    WeightSpec,
    get_weight_spec,
    register_weights,
    weight_names,
)

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_MIRROR",
    "ENV_OFFLINE",
    "ENV_WEIGHTS_DIR",
    "HASH_KINDS",
    "TOFU_WARNING",
    "FetchResult",
    "ImportResult",
    "LoadedWeights",
    "PackageSource",
    "ProgressCallback",
    "ResolvedWeights",
    "VerifyResult",
    "WeightSpec",
    "cache_dir",
    "cached_sha256",
    "fetch",
    "fetch_hint",
    "file_digests",
    "get_weight_spec",
    "import_dir",
    "list_weights",
    "load_into",
    "load_state_dict",
    "lock_path",
    "register_weights",
    "resolve_for_backbone",
    "resolve_weights",
    "verify",
    "weight_names",
]
