"""``gstvqa``: GSTVQA's temporal head network, loaded from its checkpoint (registry ``gstvqa_konvid`` by default).

The head runs on the ``vgg16_meanstd`` frame features; :func:`load_gstvqa_net` resolves, hash-checks and
strictly loads the checkpoint through :func:`aigve.weights.load_into`.
"""

from __future__ import annotations

import os

from aigve.backbones.nets.gstvqa import GSTVQANet
from aigve.weights import load_into

WEIGHTS_NAME = "gstvqa_konvid"


def load_gstvqa_net(
    explicit_path: str | os.PathLike[str] | None = None, weights_name: str = WEIGHTS_NAME
) -> tuple[GSTVQANet, str, str]:
    """Resolve, hash-check and strictly load a GSTVQA checkpoint. Returns ``(net, sha256, path)``.

    Raises ``WeightsError`` naming the file and where to put it when it is missing or not a GSTVQA state dict.
    """
    loaded = load_into(
        GSTVQANet,
        weights_name,
        explicit_path,
        context="gstvqa needs the GSTVQA checkpoint",
        what="a GSTVQA checkpoint",
    )
    return loaded.module, loaded.sha256, str(loaded.path)
