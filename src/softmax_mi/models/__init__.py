"""Network architectures.

Imported lazily: torchvision-based backbones cost about a second to import, and most pipeline jobs (every
synthetic MI run) only need the MLP. ``from softmax_mi.models import X`` still works for every name below.
"""

from softmax_mi import lazy_attribute

_LOCATIONS = {
    "ADL": "adl",
    "BACKBONES": "backbones",
    "build_backbone": "backbones",
    "GapCNN": "gap_cnn",
    "LeNet": "lenet",
    "StackedLeNet": "lenet",
    "StackedLinear": "linear",
    "MLP": "mlp",
    "ResNet50GAP": "resnet",
    "VGG16GAP": "vgg",
}

__all__ = sorted(_LOCATIONS)


def __getattr__(name: str):
    return lazy_attribute(__name__, _LOCATIONS, name)

