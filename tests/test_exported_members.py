"""The public SDK surface is assembled in shipyard/__init__.py; keep __all__ complete."""

from __future__ import annotations

import subprocess
import sys

import shipyard


def test_all_is_sorted_and_resolves() -> None:
    assert shipyard.__all__ == sorted(shipyard.__all__)
    for name in shipyard.__all__:
        assert getattr(shipyard, name) is not None, name


def test_every_public_function_has_a_docstring_or_wraps_one() -> None:
    for name in shipyard.__all__:
        obj = getattr(shipyard, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__module__.startswith("shipyard"), name


def test_import_is_lazy() -> None:
    code = (
        "import sys, shipyard; "
        "heavy = [m for m in ('sqlalchemy', 'httpx', 'pandas', 'numpy', 'starlette') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
