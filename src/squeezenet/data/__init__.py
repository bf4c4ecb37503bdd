"""Data tier: image folders and the one sampler, the decoded-image cache, batched uint8 augmentation.

May import models and formats (a model's classes and preprocessing); never compression, training or above.
"""
