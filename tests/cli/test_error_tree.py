"""One error tree: every exception class benchwatch defines derives from `BenchwatchError`, each
name means one thing, and each package has one configuration error under `probes.ConfigError`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import pytest

import probes
from probes.errors import BenchwatchError, ConfigError

PACKAGES = ("probes", "collector", "drift", "benchwatch")


def _exception_classes() -> dict[str, list[type[BaseException]]]:
    """name -> the exception classes of that name defined in our four packages."""
    found: dict[str, list[type[BaseException]]] = defaultdict(list)
    for package in PACKAGES:
        root = importlib.import_module(package)
        modules = [root] + [importlib.import_module(m.name) for m in
                            pkgutil.walk_packages(root.__path__, f"{package}.")
                            if not m.name.endswith("__main__")]  # __main__ runs the CLI
        for module in modules:
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException)
                        and obj.__module__ == module.__name__ and obj not in found[name]):
                    found[name].append(obj)
    return found


def test_every_exception_class_derives_from_benchwatch_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 15  # the walk found them
    outside = [f"{c.__module__}.{c.__qualname__}" for cs in classes.values() for c in cs
               if not issubclass(c, BenchwatchError)]
    assert not outside, f"not under probes.BenchwatchError: {outside}"
    duplicated = {name: [c.__module__ for c in cs] for name, cs in classes.items() if len(cs) > 1}
    assert not duplicated, f"one name, several classes: {duplicated}"


@pytest.mark.parametrize("path", ["probes.ConfigError", "collector.CollectorConfigError",
                                  "drift.DriftError", "benchwatch.errors.UsageError"])
def test_each_package_has_one_configuration_error(path: str) -> None:
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ConfigError) and issubclass(cls, ValueError)
    configs = [c for cs in _exception_classes().values() for c in cs
               if c.__module__.split(".")[0] == module.split(".")[0]
               and issubclass(c, ConfigError) and c is not cls and not issubclass(c, cls)]
    assert not configs, f"{module} has more than one configuration error: {configs}"


def test_the_root_is_exported_from_probes() -> None:
    from probes import BenchwatchError as exported

    assert exported is BenchwatchError and "BenchwatchError" in probes.__all__
    assert probes.ConfigError is ConfigError and issubclass(probes.MissingExtraError, ImportError)
