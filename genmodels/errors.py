"""The errors a user can cause: one base class, so that the command line can tell them apart
from bugs.

``genmodels.cli.main`` prints a :class:`UserError` as one line on stderr and exits with status
2; any other exception is a bug and keeps its traceback. Library code raises a subclass at the
point where it reads an input (a config, a checkpoint, a data file, an argument), with a
message that names the input and what to do about it. This module imports nothing, so every
layer can use it.
"""

from __future__ import annotations


class UserError(Exception):
    """An expected failure caused by an input or the environment, not by a bug: a bad config
    value, a missing or corrupt file, a missing device, a diverging run."""


class InputError(UserError, ValueError):
    """An argument, file or value that cannot be used as given (also a ``ValueError``, as the
    library raised before)."""


def first_sentence(err: BaseException) -> str:
    """The first sentence of an error's message: what went wrong, without advice that does
    not apply (torch.load's goes on about ``weights_only=False``)."""
    text = str(err)
    return text.splitlines()[0].split(". ")[0] if text else ""


__all__ = ["InputError", "UserError", "first_sentence"]
