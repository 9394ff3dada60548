"""The one progress bar of genmodels: tqdm with a time estimate, quiet in logs.

On a terminal it is a plain tqdm bar. Elsewhere (CI, a log file, a pipe) the bar appears only
after ``LOG_INTERVAL`` seconds and then writes one plain line at most every ``LOG_INTERVAL``
seconds (and a last one when it closes), instead of a carriage return per update::

    for batch in progress(batches, desc="held-out NLL", unit="batch"):
        ...
    with progress(total=n, desc="samples", unit="img") as bar:
        bar.update(len(x))
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

LOG_INTERVAL = 10.0  # seconds between lines when stderr is not a terminal


class _Lines:
    """A file for tqdm that turns its in-place updates (``"\\r" + status``) into lines."""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text:
            sys.stderr.write(text + "\n")  # looked up now: pytest and callers may swap it

    def flush(self) -> None:
        sys.stderr.flush()


def is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress(iterable: Iterable | None = None, *, total: float | None = None,
             desc: str | None = None, unit: str = "it", disable: bool = False,
             **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr (elapsed time, rate and time left); ``kwargs`` go to tqdm.

    Not on a terminal: shown only after ``LOG_INTERVAL`` seconds, then at most one line per
    ``LOG_INTERVAL`` seconds, in ASCII."""
    if not is_terminal():
        kwargs = {"file": _Lines(), "mininterval": LOG_INTERVAL, "maxinterval": LOG_INTERVAL,
                  "delay": LOG_INTERVAL, "ascii": True, "ncols": 100,
                  **{k: v for k, v in kwargs.items() if k != "dynamic_ncols"}}
    else:
        kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, **kwargs)




@contextmanager
def tick_on_forward(module, bar: tqdm) -> Iterator[tqdm]:
    """Advance ``bar`` by one after each forward call of the torch ``module``: progress of a
    library loop (an inpainting chain's decoder passes) that takes no bar itself."""
    def tick(*_) -> None:  # a forward hook that returned a value would replace the output
        bar.update()

    handle = module.register_forward_hook(tick)
    try:
        yield bar
    finally:
        handle.remove()


@contextmanager
def tick_on_optimizer_step(bar: tqdm) -> Iterator[tqdm]:
    """Advance ``bar`` by one after each ``step()`` of any torch optimizer (e.g. the Adam
    iterations of latent quantization)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    def tick(*_) -> None:
        bar.update()

    handle = register_optimizer_step_post_hook(tick)
    try:
        yield bar
    finally:
        handle.remove()


__all__ = ["LOG_INTERVAL", "is_terminal", "progress", "tick_on_forward", "tick_on_optimizer_step"]
