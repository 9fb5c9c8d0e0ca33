"""A command called straight from its typer declarations when its words are plain.

Typer builds a pydantic adapter for each parameter of the command it runs, and the click command
around them: about a tenth of a second, a tenth of `kpdeliver convert --to yolo` on 100,000
instances. For a command in `PLAIN` whose words are all plain (its arguments, each option once as
`--name value` or `--name=value`, each value a choice where the option has choices, every
parameter a string, a path or a choice), the function is called with those values and the
declared defaults, as typer would call it. Anything else (`--help`, an unknown, repeated or
missing option, a wrong choice, a word starting with `-` where a value or an argument goes) is left
to typer, which parses it, and says what is wrong, as always.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path

# command -> the module whose function of that name it runs
PLAIN = {"convert": "kpdeliver.cli.formats"}


def plain_call(words: list[str]) -> tuple[Callable, dict] | None:
    """(the command's function, its keyword arguments) for the words after `kpdeliver`, or None
    when typer is to parse them."""
    if not words or words[0] not in PLAIN:
        return None
    from typer.models import ArgumentInfo, OptionInfo

    fn = getattr(importlib.import_module(PLAIN[words[0]]), words[0])
    hints = typing.get_type_hints(fn)
    flags: dict[str, str] = {}
    arguments: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        info = param.default
        if isinstance(info, ArgumentInfo):
            arguments.append(name)
        elif isinstance(info, OptionInfo):
            flags.update(dict.fromkeys(info.param_decls or (f"--{name.replace('_', '-')}",), name))
        else:
            return None
    given = _words(words[1:], flags, arguments)
    if given is None:
        return None
    kwargs = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name in given:
            value = _value(hints[name], given[name])
            if value is _REFUSED:
                return None
            kwargs[name] = value
        elif param.default.default is ...:  # required and not given: typer says so
            return None
        else:
            kwargs[name] = param.default.default
    return fn, kwargs


def _words(words: list[str], flags: dict[str, str], arguments: list[str]) -> dict[str, str] | None:
    """Parameter name -> its word, or None unless every word is plain."""
    given: dict[str, str] = {}
    positional: list[str] = []
    rest = iter(words)
    for word in rest:
        if not word:  # an empty word: typer's to judge
            return None
        if not word.startswith("-"):
            positional.append(word)
            continue
        flag, eq, value = word.partition("=")
        name = flags.get(flag)
        if name is None or name in given:
            return None
        if not eq:
            value = next(rest, "-")  # an option without its value: typer says so
        if not value or value.startswith("-"):
            return None
        given[name] = value
    if len(positional) != len(arguments):
        return None
    return {**given, **dict(zip(arguments, positional))}


_REFUSED = object()


def _value(hint: object, word: str) -> object:
    """The word as the parameter's type (str, Path, an Enum of choices, or one of them or None);
    `_REFUSED` for any other type or a word that is none of the choices."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = kinds[0] if len(kinds) == 1 else None
    if hint is str:
        return word
    if hint is Path:
        return Path(word)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return next((m for m in hint if m.value == word), _REFUSED)
    return _REFUSED


def run_plain(fn: Callable, kwargs: dict) -> int:
    """Run the command as typer's group would (a KpdeliverError said in one sentence); its exit code."""
    import typer

    from kpdeliver.cli.runtime import failures_said

    try:
        with failures_said():
            fn(**kwargs)
    except typer.Exit as e:
        return e.exit_code
    except (KeyboardInterrupt, EOFError):  # as click says it
        typer.echo("\nAborted!", err=True)
        return 1
    return 0
