"""Models tier, the bottom: the Fire family and AlexNet, their configurations, the registry, the per-layer
summary and the preprocessing each family of weights was trained with. Imports nothing above it."""
