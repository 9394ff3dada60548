"""Build the API reference of genmodels from its docstrings (``make docs``): HTML pages under
build/api/ rendered by pdoc, after a check that every cross-reference resolves.

    python docs/build_api.py [--out build/api] [--check-only]

The docstrings are reStructuredText-flavoured: ``:func:`name``` and ``:class:``, ``:meth:``,
``:mod:``, ``:data:``, ``:attr:`` roles (a leading ``~`` shows the last part only). A target
resolves as Sphinx would look it up: an attribute of the documented class (for methods and
attributes; also a field it annotates or a ``self.NAME`` its methods assign), a name of the
documented module, or a dotted path importable from the top (e.g. ``genmodels.inpaint.inpaint``,
``torch.nn.Module``). Any reference that resolves to nothing is printed with its place and the
build fails (exit status 1) before rendering.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|data|attr|obj|exc):`~?([^`<>\s]+)`")


def modules() -> list[ModuleType]:
    """genmodels and every module below it, imported."""
    import genmodels

    names = ["genmodels"] + [info.name for info in pkgutil.walk_packages(genmodels.__path__,
                                                                         "genmodels.")]
    return [importlib.import_module(name) for name in names]


def documented(module: ModuleType) -> Iterator[tuple[str, object, object]]:
    """(qualified name, object, its owner class or None) of the module and of every function,
    class and method defined in it."""
    yield module.__name__, module, None
    for name, value in list(vars(module).items()):
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value):
            yield f"{module.__name__}.{name}", value, value
            for member_name, member in list(vars(value).items()):
                function = getattr(member, "__func__", member)
                if isinstance(member, property):
                    function = member.fget
                if inspect.isfunction(function) and function.__doc__:
                    yield f"{module.__name__}.{name}.{member_name}", function, value
        elif inspect.isfunction(value):
            yield f"{module.__name__}.{name}", value, None


def resolves(target: str, module: ModuleType, owner: object) -> bool:
    """Whether a role's target names something, looked up as Sphinx would."""
    target = target.rstrip("()")
    head, *rest = target.split(".")
    if owner is not None and not rest and (head in instance_attributes(owner)
                                           or head in getattr(owner, "__annotations__", {})):
        return True
    for scope in (owner, module):
        if scope is None:
            continue
        value = getattr(scope, head, None)
        if value is None and scope is module and head in getattr(module, "__annotations__", {}):
            value = True  # an annotated module constant
        if value is not None and _walk(value, rest):
            return True
    for split in range(len(target.split(".")), 0, -1):  # the longest importable prefix
        parts = target.split(".")
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        return _walk(value, parts[split:])
    return False


def instance_attributes(cls: type) -> set[str]:
    """The names a class's methods assign as ``self.NAME``."""
    try:
        return set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=", inspect.getsource(cls)))
    except (OSError, TypeError):
        return set()


def _walk(value: object, names: list[str]) -> bool:
    for name in names:
        if not hasattr(value, name):
            return False
        value = getattr(value, name)
    return True


def broken_references() -> list[str]:
    """``place: :role:`target``` for every reference of the docstrings that resolves to
    nothing."""
    broken = []
    for module in modules():
        for place, value, owner in documented(module):
            for role, target in ROLE.findall(inspect.getdoc(value) or ""):
                if not resolves(target, module, owner):
                    broken.append(f"{place}: :{role}:`{target}`")
    return broken


def render(out: Path) -> None:
    import pdoc
    import pdoc.docstrings
    import pdoc.render

    rst = pdoc.docstrings.rst

    def without_tildes(contents: str, source_file: Path | None) -> str:
        # pdoc keeps Sphinx's "~" (show the last part) as text: drop it, link the full name
        return rst(re.sub(r"(:\w+:`)~", r"\1", contents), source_file)

    pdoc.docstrings.rst = without_tildes
    pdoc.render.configure(docformat="restructuredtext", footer_text="genmodels API reference",
                          search=True, show_source=True)
    with warnings.catch_warnings():  # a package and its module both listed: one page each
        warnings.simplefilter("ignore", UserWarning)
        pdoc.pdoc(*(module.__name__ for module in modules()), output_directory=out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "api")
    parser.add_argument("--check-only", action="store_true",
                        help="check the cross-references; render nothing")
    args = parser.parse_args()
    broken = broken_references()
    if broken:
        print(f"{len(broken)} broken cross-reference(s) in the docstrings:", *broken, sep="\n  ",
              file=sys.stderr)
        return 1
    print("every cross-reference of the docstrings resolves")
    if not args.check_only:
        render(args.out)
        print(f"wrote {args.out}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
