"""The paper's printed figures, kept as data so the report can set our measurements beside them.

These are citations of the paper (arXiv 1602.07360 v4; typos corrected as in docs/paper-facts.md), not results.
"""

from __future__ import annotations

# Table 1: layer -> (output HxWxC as printed, parameters before pruning, after pruning, weight bits)
TABLE1 = {
    "conv1": ("111x111x96", 14_208, 14_208, 6),
    "maxpool1": ("55x55x96", None, None, None),
    "fire2": ("55x55x128", 11_920, 5_746, 6),
    "fire3": ("55x55x128", 12_432, 6_258, 6),
    "fire4": ("55x55x256", 45_344, 20_646, 6),
    "maxpool4": ("27x27x256", None, None, None),
    "fire5": ("27x27x256", 49_440, 24_742, 6),
    "fire6": ("27x27x384", 104_880, 44_700, 6),
    "fire7": ("27x27x384", 111_024, 46_236, 6),
    "fire8": ("27x27x512", 188_992, 77_581, 6),
    "maxpool8": ("13x13x512", None, None, None),
    "fire9": ("13x13x512", 197_184, 77_581, 6),
    "conv10": ("13x13x1000", 513_000, 103_400, 6),
    "avgpool10": ("1x1x1000", None, None, None),
}


TABLE1_TOTAL = (1_248_424, 421_098)


MACS_224 = {"squeezenet1_0": 818.9e6, "squeezenet1_1": 349.2e6}


V1_1_PARAMS = 1_235_496


V1_1_COMPUTE_SAVING = 2.4  # "2.4x less computation than v1.0"


# Table 3: variant -> (top-1, top-5, size in MB as printed)
TABLE3 = {"none": (57.5, 80.3, 4.8), "simple": (60.4, 82.5, 4.8), "complex": (58.8, 82.0, 7.7)}


# Figure 3: parameter counts along the sweeps as given in the text; sizes at the ends of the printed axes (MB)
SR_PARAMS = {0.125: 1.25e6, 0.25: 1.97e6, 0.5: 3.40e6, 0.75: 4.84e6, 1.0: 6.28e6}


SR_SIZE_MB = (4.8, 19.0)


PCT3X3_VALUES = (0.01, 0.125, 0.25, 0.5, 0.75, 0.99)


PCT3X3_SIZE_MB = (5.9, 21.3)


# Table 2: (network, compression, data type, size in MB, reduction vs AlexNet, top-1, top-5)
TABLE2 = [
    ("AlexNet", "none", "32 bit", 240, 1, 57.2, 80.3),
    ("AlexNet", "SVD", "32 bit", 48, 5, 56.0, 79.4),
    ("AlexNet", "network pruning", "32 bit", 27, 9, 57.2, 80.3),
    ("AlexNet", "Deep Compression", "5-8 bit", 6.9, 35, 57.2, 80.3),
    ("SqueezeNet", "none", "32 bit", 4.8, 50, 57.5, 80.3),
    ("SqueezeNet", "Deep Compression", "8 bit", 0.66, 363, 57.5, 80.3),
    ("SqueezeNet", "Deep Compression", "6 bit", 0.47, 510, 57.5, 80.3),
]
