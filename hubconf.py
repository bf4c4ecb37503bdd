"""torch.hub entry points: `torch.hub.load("path/to/checkout", "squeezenet1_1", pretrained=True, source="local")`.

One entry point per registered model, generated from the registry, so a new model needs no line here;
`torch.hub.help(REPO, name, source="local")` prints its docstring. Pretrained weights come from where
`squeezenet.create_model(name, pretrained=True)` finds them (the bundled model, or ../shared, $SQUEEZENET_SHARED):
nothing is downloaded.
"""

from squeezenet.formats.pretrained import hub_entry_points as _entry_points

dependencies = ["torch"]

globals().update(_entry_points())
