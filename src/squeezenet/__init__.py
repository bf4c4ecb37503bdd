"""SqueezeNet, end to end: the model family, training, Deep Compression, exploration and deployment."""

from squeezenet import formats  # noqa: F401  (every weights format registered with `load`)
from squeezenet.formats.card import model_card
from squeezenet.formats.pretrained import create_model, list_models
from squeezenet.formats.safetensors import save
from squeezenet.formats.weights import Weights, load
from squeezenet.models.alexnet import AlexNet
from squeezenet.models.config import SQUEEZENET1_0, SQUEEZENET1_1, FireSpec, SqueezeNetConfig
from squeezenet.models.preprocessing import Preprocessing
from squeezenet.models.registry import model_config, squeezenet1_0, squeezenet1_1
from squeezenet.models.squeezenet import Fire, SqueezeNet, min_input_size

__version__ = "0.1.0"

__all__ = [
    "AlexNet", "Fire", "FireSpec", "SQUEEZENET1_0", "SQUEEZENET1_1", "SqueezeNet", "SqueezeNetConfig",
    "create_model", "list_models", "min_input_size", "model_config", "squeezenet1_0", "squeezenet1_1",
    "Preprocessing", "Weights", "load", "model_card", "save",
]
