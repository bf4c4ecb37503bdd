"""The command line reference page: every command's flags with their defaults, from the parsers `squeezenet`
itself builds (`build_parser`), so the page cannot disagree with `squeezenet COMMAND --help`.

The documentation's build renders `cli_markdown()` into its command line reference (docs/hooks.py). A flag's
default is the one `--help` prints: the value argparse holds, or, for flags whose value comes from elsewhere (a
recipe, a dataclass field left unset so that only what the user typed overrides it), the default named in its help.
"""

from __future__ import annotations

import argparse
import re

from squeezenet.cli import COMMANDS, build_parser

WIDTH = 110  # columns of the usage lines
MARKDOWN = re.compile(r"([\\*_|\[\]])")  # characters markdown would read as emphasis, a table or a link


def _escape(text: str) -> str:
    """Plain help text safe in a markdown table cell; `code` spans are kept as they are."""
    parts = " ".join(text.split()).split("`")
    out = [p if i % 2 else MARKDOWN.sub(r"\\\1", p).replace("<", "&lt;").replace(">", "&gt;")
           for i, p in enumerate(parts)]
    return "`".join(out) if len(parts) % 2 else "`".join(out).replace("`", "'")


def _default_segment(text: str) -> tuple[int, int] | None:
    """Where the last '(default...)' of a help text starts and ends (parentheses balanced)."""
    start = text.rfind("(default")
    if start < 0:
        return None
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return start, i + 1
    return None


def split_default(action: argparse.Action, formatter: argparse.HelpFormatter) -> tuple[str, str]:
    """(description, default) of a flag as `--help` shows it, the default taken out of the text when it is a
    plain value; 'off' for a switch."""
    text = formatter._expand_help(action) if action.help else ""
    appended = f" (default: {action.default})"  # what the Formatter adds to a help that names its own default
    if "(default" in (action.help or "") and text.endswith(appended):
        text = text[:-len(appended)]
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return text, "off"  # a switch: not given unless typed
    seg = _default_segment(text)
    if seg is None:
        return text, ""
    inner = re.sub(r"^\(default:?\s*", "", text[seg[0]:seg[1] - 1])
    if ";" in inner:  # a default with a remark: the value in the column, the remark stays in the text
        return text, inner.split(";")[0].strip()
    rest = (text[:seg[0]].rstrip() + " " + text[seg[1]:].lstrip()).strip()
    return re.sub(r"\s+([;,.])", r"\1", rest), inner.strip()


def _flag(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    return f"`{formatter._format_action_invocation(action)}`"


def _table(actions: list[argparse.Action], formatter: argparse.HelpFormatter) -> list[str]:
    lines = ["| flag | default | what |", "|---|---|---|"]
    for a in actions:
        if a.help == argparse.SUPPRESS or isinstance(a, argparse._HelpAction):
            continue
        text, default = split_default(a, formatter)
        lines.append(f"| {_flag(a, formatter)} | {f'`{default}`' if default else ''} | {_escape(text)} |")
    return lines if len(lines) > 2 else []


def _command(name: str, parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    module = COMMANDS[name]
    wrapped = parser.formatter_class(prog=parser.prog, width=WIDTH)  # not the terminal's: the page is the same anywhere
    wrapped.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    usage = wrapped.format_help().rstrip()
    examples = [" ".join(line.split()) for line in module.EXAMPLE.splitlines()]
    lines = [f"## {name}", "", _escape(module.HELP[:1].upper() + module.HELP[1:]) + ".", "", "```text", usage,
             "```", "", "Example:", "", "```text", *examples, "```"]
    for group in parser._action_groups:
        table = _table(group._group_actions, formatter)
        if table:
            title = {"options": "Options", "positional arguments": "Arguments"}.get(group.title, group.title)
            lines += ["", f"**{_escape(title[:1].upper() + title[1:])}**", "", *table]
    return lines


def cli_markdown() -> str:
    """The reference: the program's own options, then one section per command, in `squeezenet --help`'s order."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    top = [a for a in parser._actions if a is not sub]
    parts = [["`squeezenet [--quiet] COMMAND [flags]`; `squeezenet COMMAND --help` prints the same as this page.", "",
              *_table(top, parser._get_formatter())]]
    parts += [_command(name, sub.choices[name]) for name in COMMANDS]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"
