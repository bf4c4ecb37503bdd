"""Training tier: recipes, the loop (checkpoints, bit-exact resume, DDP), evaluation and curves.

May import models, formats, data and compression (a run can prune); never deploy, experiments or the CLI.
"""
