"""Compression tier: Deep Compression's algorithms (prune, quantize, lowrank) and the pipeline that chains them.

May import models, formats and data; knows nothing of training runs, deployment or the CLI. A new algorithm is a
module here; the pipeline (`pipeline.compress`) decides when it runs, `sizes` how its result is counted.
"""
