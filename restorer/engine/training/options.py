"""Training options <-> `restorer train` arguments, derived from the config dataclasses.

A config field becomes a command-line option by its metadata, written with :func:`option`::

    patch: int = option(48, "--patch", "LR patch side")

:func:`add_arguments` adds the options of a config class to an argparse parser (the type comes from
the annotation; a ``list[...]`` field is a repeatable flag, a ``bool`` a switch),
:func:`config_values` reads them back from the parsed namespace, and :func:`config_argv` turns
field values (the dialog's settings, a checkpoint's config) into the arguments again. So a new
training option is one line in its dataclass: the CLI, the app's New model page and Resume all
follow it.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Iterable, Optional, Sequence, Union

CLI_KEY = "cli"  # the metadata key of a field that is a command-line option


@dataclasses.dataclass(frozen=True)
class CliOption:
    flag: str  # e.g. "--checkpoint-every"
    help: str = ""
    choices: Optional[tuple[Any, ...]] = None
    required: bool = False
    cli_default: Any = None  # the command line's default when it differs from the dataclass's


def option(default: Any = dataclasses.MISSING, flag: str = "", help: str = "", *,
           choices: Optional[Sequence[Any]] = None, required: bool = False, cli_default: Any = None,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is also a `restorer train` option."""
    meta = {CLI_KEY: CliOption(flag, help, tuple(choices) if choices is not None else None, required, cli_default)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str  # the dataclass field
    cli: CliOption
    kind: type  # int | float | str | bool
    repeated: bool  # a list field: the flag may be given several times


def _unwrap(tp: Any) -> tuple[type, bool]:
    """(element type, is a list) of a field annotation: Optional[X] -> X, list[X] -> (X, True)."""
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
        if list in [typing.get_origin(a) or a for a in args]:  # str | list[str]
            return _unwrap(next(a for a in args if (typing.get_origin(a) or a) is list))
        return str, False
    if origin in (list, tuple, Sequence):
        inner = typing.get_args(tp)
        return (inner[0] if inner else str), True
    return (tp if isinstance(tp, type) else str), False


def _cli_option(config_cls: type, f: dataclasses.Field) -> Optional[CliOption]:
    """The option of field `f`; a task config that only changes a default (`lr: float = 1e-4`)
    keeps the option of the base class's field."""
    for cls in config_cls.__mro__:
        base = getattr(cls, "__dataclass_fields__", {}).get(f.name)
        if base is not None and CLI_KEY in base.metadata:
            return base.metadata[CLI_KEY]
    return None


def option_specs(config_cls: type) -> list[_Spec]:
    """The command-line options of a config dataclass, in field order."""
    hints = typing.get_type_hints(config_cls)
    out = []
    for f in dataclasses.fields(config_cls):
        cli = _cli_option(config_cls, f)
        if cli is None:
            continue
        kind, repeated = _unwrap(hints[f.name])
        out.append(_Spec(f.name, cli, kind, repeated))
    return out


def add_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add every option of `config_cls` to `parser` (the destination is the field's name).

    Options not given stay None (the dataclass default applies) unless the option has a
    command-line default of its own."""
    for spec in option_specs(config_cls):
        cli = spec.cli
        kwargs: dict[str, Any] = {"dest": spec.name, "help": cli.help or None, "default": cli.cli_default}
        if spec.kind is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = spec.kind
            kwargs["metavar"] = cli.flag.lstrip("-").upper().replace("-", "_")
            if spec.repeated:
                kwargs["action"] = "append"
                kwargs["metavar"] = "DIR" if spec.name == "data" else kwargs["metavar"]
            if cli.choices is not None:
                kwargs["choices"] = list(cli.choices)
        if cli.required:
            kwargs["required"] = True
        parser.add_argument(cli.flag, **{k: v for k, v in kwargs.items() if v is not None or k == "default"})


def config_values(namespace: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    """The field values the user gave on the command line (options left out are not in it)."""
    out = {}
    for spec in option_specs(config_cls):
        value = getattr(namespace, spec.name, None)
        if value is not None:
            out[spec.name] = value
    return out


def format_value(value: Any) -> str:
    """An option's value as an argument: 20.0 -> '20', 0.0002 -> '0.0002' (floats exactly, not rounded)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def config_argv(config_cls: type, values: dict[str, Any], *, exclude: Iterable[str] = ()) -> list[str]:
    """The arguments that give the fields of `values` (None and unknown fields are left out;
    a list is one flag per item; a true bool is its switch alone, a false one is left out)."""
    skip = set(exclude)
    argv: list[str] = []
    for spec in option_specs(config_cls):
        if spec.name in skip or values.get(spec.name) is None:
            continue
        value = values[spec.name]
        if spec.kind is bool:
            if value:
                argv.append(spec.cli.flag)
        elif spec.repeated:
            items = [value] if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) else list(value)
            for item in items:
                argv += [spec.cli.flag, format_value(item)]
        else:
            argv += [spec.cli.flag, format_value(value)]
    return argv
