"""Where ImageNet weights come from: a user-given file, else torch's hub cache, else a clear error.

Nothing is downloaded. ``pretrained`` is ``"none"`` (random init, only when asked for), ``"torch_cache"`` (the file
torchvision would download, looked up in ``$TORCH_HOME/hub/checkpoints``), or a path to a state dict.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from softmax_mi.io import load_checkpoint

log = logging.getLogger(__name__)

CACHE_FILES = {"vgg16": "vgg16-397923af.pth", "resnet50": "resnet50-0676ba61.pth", "resnet18": "resnet18-f37072fd.pth",
               "inception_v3": "inception_v3_google-0cc3c7bd.pth"}


def resolve_weights(arch: str, pretrained: str) -> Path | None:
    if pretrained == "none":
        return None
    if pretrained == "torch_cache":
        path = Path(torch.hub.get_dir()) / "checkpoints" / CACHE_FILES[arch]
        if not path.exists():
            raise FileNotFoundError(
                f"{arch}: ImageNet weights not found at {path}. Put torchvision's {CACHE_FILES[arch]} there, give a "
                "path in params (localisation.<backbone>.pretrained: /path/to/weights.pth), or set pretrained: none "
                "to train from random initialisation on purpose."
            )
        return path
    path = Path(pretrained)
    if not path.exists():
        raise FileNotFoundError(f"{arch}: pretrained weights file {path} does not exist")
    return path


def load_backbone_weights(model: nn.Module, arch: str, pretrained: str) -> None:
    """Load matching tensors (name and shape) from the weights file; the new head stays randomly initialised."""
    path = resolve_weights(arch, pretrained)
    if path is None:
        log.info("%s: random initialisation (pretrained: none)", arch)
        return
    state = load_checkpoint(path, fix="give localisation.pretrained the path of a torchvision state dict, or none")
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    log.info("%s: loaded %d/%d tensors from %s", arch, len(usable), len(own), path)
