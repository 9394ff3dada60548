"""Lazy package attributes (PEP 562): a package's public names are imported from their
submodule when first used, so that importing the package, or a light submodule of it, does not
load torch. ``genmodels --help`` reads the commands' arguments from light modules this way and
answers without importing torch (benchmarks/startup.py).

    __getattr__, __dir__ = lazy_exports(__name__, {"genmodels.inpaint.masks": ("make_mask",)})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def lazy_exports(package: str, exports: dict[str, Iterable[str]]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose names ``exports[module]`` live
    in ``module``: each is imported on first access and then kept in the package's namespace."""
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(home))

    return __getattr__, __dir__
