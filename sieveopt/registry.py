"""Name -> implementation registries, open to other packages through entry points.

``Registry("sieveopt.cost_models")`` holds built-ins registered with :meth:`Registry.register`
and discovers third-party ones from the entry-point group of the same name on first lookup.
``sieveopt plugins`` lists every registry.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from sieveopt.errors import SieveoptError

_ALL: dict[str, Registry] = {}


class Registry:
    """A named mapping of plugin name -> factory/object, plus entry-point discovery."""

    def __init__(self, group: str, what: str) -> None:
        self.group, self.what = group, what
        self._items: dict[str, Any] = {}
        self._docs: dict[str, str] = {}
        self._loaded_entry_points = False
        _ALL[group] = self

    def register(self, name: str, obj: Any = None, *, doc: str = "") -> Any:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def _do(o: Any) -> Any:
            self._items[name] = o
            self._docs[name] = doc or (o.__doc__ or "").strip().split("\n")[0]
            return o

        return _do(obj) if obj is not None else _do

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.group):
            if ep.name in self._items:
                continue
            try:
                self.register(ep.name, ep.load())
            except Exception as exc:  # a broken third-party plugin must not break the tool
                self._docs[ep.name] = f"(failed to load: {exc})"

    def get(self, name: str) -> Any:
        self._load_entry_points()
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            raise SieveoptError(f"unknown {self.what} '{name}' (known: {known})")
        return self._items[name]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def ordered(self) -> list[str]:
        """Names in registration order (built-ins first, as registered)."""
        self._load_entry_points()
        return list(self._items)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (no error when absent)."""
        self._items.pop(name, None)
        self._docs.pop(name, None)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def describe(self) -> dict[str, str]:
        self._load_entry_points()
        return {n: self._docs.get(n, "") for n in sorted(set(self._items) | set(self._docs))}


def all_registries() -> dict[str, Registry]:
    """Every registry, after importing the modules that fill the built-in ones."""
    import importlib

    for mod in ("sieveopt.models.costmodel", "sieveopt.solvers", "sieveopt.targets"):
        importlib.import_module(mod)
    return dict(_ALL)


def lazy(module: str, attr: str) -> Callable[..., Any]:
    """A factory that imports ``module.attr`` on first call (keeps start-up light)."""

    def _factory(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    _factory.__doc__ = f"{module}.{attr}"
    _factory.lazy_target = (module, attr)  # type: ignore[attr-defined]  (signature checks)
    return _factory
