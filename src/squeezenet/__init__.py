"""SqueezeNet, end to end: the model family, training, Deep Compression, exploration and deployment."""

from . import sqzformat  # noqa: F401  (registers the .sqz reader with `load`)
from .alexnet import AlexNet
from .config import SQUEEZENET1_0, SQUEEZENET1_1, FireSpec, SqueezeNetConfig
from .model import Fire, SqueezeNet, min_input_size
from .preprocess import Preprocessing
from .registry import create_model, list_models, model_config, squeezenet1_0, squeezenet1_1
from .weights import Weights, load, save

__version__ = "0.1.0"

__all__ = [
    "AlexNet", "Fire", "FireSpec", "SQUEEZENET1_0", "SQUEEZENET1_1", "SqueezeNet", "SqueezeNetConfig",
    "create_model", "list_models", "min_input_size", "model_config", "squeezenet1_0", "squeezenet1_1",
    "Preprocessing", "Weights", "load", "save",
]
