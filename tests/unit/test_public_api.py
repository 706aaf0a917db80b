"""The public surface: ``reconciler.__all__`` is sorted, complete and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import reconciler
from reconciler import api


def test_all_is_sorted_and_unique() -> None:
    """Sorted as isort sorts names (ruff's RUF022): constants, then classes, then functions."""
    names = reconciler.__all__
    assert len(names) == len(set(names))
    constants = [n for n in names if n.isupper()]
    classes = [n for n in names if n[0].isupper() and not n.isupper()]
    functions = [n for n in names if n[0].islower()]
    assert names == sorted(constants) + sorted(classes) + sorted(functions)


def test_every_public_name_resolves_to_what_its_module_defines() -> None:
    for name in reconciler.__all__:
        value = getattr(reconciler, name)
        assert value is not None, name
    assert reconciler.open_repository is api.open_repository
    assert reconciler.NotFoundError.__module__ == "reconciler.errors"


def test_every_api_use_case_is_public() -> None:
    assert set(api.__all__) <= set(reconciler.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        reconciler.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_importing_the_package_imports_nothing_else() -> None:
    """Every DVC stage process imports ``reconciler``: the public names must not make it pay
    for the API, pydantic or rich."""
    code = ("import sys, reconciler; "
            "print(sorted(m for m in sys.modules if m.startswith('reconciler.') "
            "or m in ('pydantic', 'rich', 'yaml')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
