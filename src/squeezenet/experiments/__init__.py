"""Experiments tier: the paper's artefacts, the design-space exploration, the report and the paper's numbers.

May import every library tier; only the CLI sits above.
"""
