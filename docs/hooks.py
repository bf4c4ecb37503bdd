"""Pages generated when the site is built (mkdocs `hooks:`): a page holds `<!-- generated: NAME -->` where the text
goes. `model-zoo`: the pretrained models from their weights' own metadata (squeezenet.experiments.zoo);
`cli`: every command's flags with defaults from the argument parsers (squeezenet.cli.reference). Weights that are
not at hand are a warning, which `mkdocs build --strict` turns into a failure."""

from __future__ import annotations

import re

from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger("squeezenet")
MARKER = re.compile(r"<!-- generated: ([\w-]+) -->")


def _model_zoo() -> str:
    from squeezenet.experiments.zoo import missing, zoo_entries, zoo_markdown

    entries = zoo_entries()
    for error in missing(entries):
        log.warning("model zoo: %s", error)
    return zoo_markdown(entries)


def _cli() -> str:
    from squeezenet.cli.reference import cli_markdown

    return cli_markdown()


GENERATORS = {"model-zoo": _model_zoo, "cli": _cli}


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    def render(m: re.Match) -> str:
        if m.group(1) not in GENERATORS:
            log.warning("%s: no generator named %r (known: %s)", page.file.src_path, m.group(1), ", ".join(GENERATORS))
            return m.group(0)
        return GENERATORS[m.group(1)]()

    return MARKER.sub(render, markdown)
