"""Weights files: every format `squeezenet.load` reads, registered here and nowhere else.

The tier above the models: a format knows architectures and preprocessing, never training or compression
algorithms. A new format is a module with a reader `(path, **options) -> Weights`, registered below. A
`save_pretrained` folder (Hugging Face Hub layout) is one too, and its functions become the model classes' methods.
"""

from squeezenet.formats import deepcompression, hub, safetensors, sqz, torchvision
from squeezenet.formats.weights import register_format

register_format("sqz", sqz.read, suffixes=(".sqz",), magic=sqz.MAGIC)
register_format("deep-compression", deepcompression.read_deep_compression, suffixes=(".net",))
register_format("safetensors", safetensors.read_safetensors, suffixes=(".safetensors",))
register_format("torch-state-dict", torchvision.read_state_dict, suffixes=(".pth", ".pt"))
register_format("pretrained-folder", hub.read_pretrained, folder=True)
hub.add_methods()
