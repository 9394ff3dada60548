"""Config errors and the range checks of config dataclasses: a leaf module (it imports only
:mod:`genmodels.errors`), so that each model kind can check its own config section without
importing the config parser, and the parser never imports a model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from genmodels.errors import UserError


class ConfigError(UserError, ValueError):
    """A config file or override that does not fit the config schema."""


def check_ranges(values: Any, section: str, positive: tuple[str, ...] = (),
                 non_negative: tuple[str, ...] = (), below_one: tuple[str, ...] = ()) -> None:
    """Raise :class:`ConfigError` for the first field of the dataclass ``values`` out of its
    range: ``positive`` (> 0), ``non_negative`` (>= 0), ``below_one`` (in [0, 1))."""
    for names, ok, rule in ((positive, lambda v: v > 0, "> 0"),
                            (non_negative, lambda v: v >= 0, ">= 0"),
                            (below_one, lambda v: 0 <= v < 1, "in [0, 1)")):
        for name in names:
            value = getattr(values, name)
            if not ok(value):
                raise ConfigError(f"{section}.{name} = {value!r} should be {rule}")


def check_choice(values: Any, section: str, name: str, choices: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless the field ``name`` of ``values`` is one of
    ``choices``."""
    choices = tuple(choices)
    value = getattr(values, name)
    if value not in choices:
        raise ConfigError(f"{section}.{name} = {value!r}; choose one of: {', '.join(choices)}")


def check_widths(values: Any, section: str, *names: str) -> None:
    """Raise :class:`ConfigError` unless every list field in ``names`` holds widths > 0."""
    for name in names:
        widths = getattr(values, name)
        if any(width < 1 for width in widths):
            raise ConfigError(f"{section}.{name} = {widths} should hold widths > 0")


__all__ = ["ConfigError", "check_choice", "check_ranges", "check_widths"]
