"""Imports point one way: api -> engine (its public surface only) -> (store, schemas).

Every module of ``engine/``, ``api/`` and ``schemas/`` is parsed with :mod:`ast`; every import
statement counts, wherever it stands (top level, inside a function or class, under
``if TYPE_CHECKING:``, in a ``try``), with relative imports resolved. A break is reported as
``file:line``. The rules:

- ``engine`` never imports the web layer (``fastapi``, ``starlette``, ``api``);
- ``api`` imports the ``engine`` package itself, never a module under it (``engine.__all__`` is
  its surface);
- ``schemas`` imports nothing of ours (neither ``engine`` nor ``api``);
- the pure packages ``engine.dag``, ``engine.contracts`` and ``engine.templates`` (and the pure
  schedule modules ``engine.schedules.timing`` and ``.context``) import neither
  the store, the HTTP clients, the runtime, the job handling nor the service, nor SQLAlchemy or a
  database or HTTP client library;
- ``engine.store`` imports neither the runtime, the job handling nor the service.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "api", "schemas")
PURE = (
    "engine.dag",
    "engine.contracts",
    "engine.templates",
    "engine.schedules.timing",
    "engine.schedules.context",
)
IO_LIBRARIES = ("sqlalchemy", "aiohttp", "httpx", "asyncpg", "aiosqlite")


@dataclass(frozen=True)
class Rule:
    #: the modules the rule applies to (a package stands for everything under it)
    importers: tuple[str, ...]
    #: what they must not import (a package stands for everything under it)
    forbidden: tuple[str, ...]
    why: str
    #: forbidden names that are allowed exactly (not what lies under them)
    exactly: tuple[str, ...] = ()

    def breaks(self, importer: str, imported: str) -> bool:
        if not any(_within(importer, p) for p in self.importers) or imported in self.exactly:
            return False
        return any(_within(imported, f) for f in self.forbidden)


RULES = (
    Rule(("engine",), ("fastapi", "starlette", "api"), "the engine never imports the web layer"),
    Rule(
        ("api",),
        ("engine",),
        "api/ imports only the engine package's public surface (engine.__all__)",
        exactly=("engine",),
    ),
    Rule(("schemas",), ("engine", "api"), "schemas/ imports nothing of ours"),
    Rule(
        PURE,
        (
            "engine.store",
            "engine.http",
            "engine.runtime",
            "engine.jobs",
            "engine.service",
            *IO_LIBRARIES,
        ),
        "a pure package loads no store, HTTP client, runtime, job handling or service",
    ),
    Rule(
        ("engine.store",),
        ("engine.runtime", "engine.jobs", "engine.service"),
        "the store sits below the runtime, the job handling and the service",
    ),
)

#: Known breaks waiting for a change elsewhere: (file, imported module). A test below fails
#: once an entry is no longer needed.
WAITING_FOR_ENGINE_EXPORT: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    importer: str
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported} ({self.why})"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_our_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every module an import statement names, anywhere in ``source``.

    ``from X import a`` names ``X.a`` when that is a module of ours, else ``X``; a relative import
    is resolved against ``module`` (a package's ``__init__`` when ``is_package``).
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names = {
                f"{base}.{alias.name}" if _is_our_module(f"{base}.{alias.name}") else base
                for alias in node.names
            }
            for name in sorted(names):
                yield node.lineno, name


def check_source(
    source: str, module: str, *, path: str, is_package: bool = False
) -> list[Violation]:
    """Every rule ``source`` (the text of ``module``, found at ``path``) breaks."""
    return [
        Violation(path, line, module, imported, rule.why)
        for line, imported in imports_of(source, module, is_package=is_package)
        for rule in RULES
        if rule.breaks(module, imported)
    ]


def _modules() -> Iterator[tuple[Path, str, bool]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            yield path, ".".join(parts[:-1] if is_package else parts), is_package


def all_violations() -> list[Violation]:
    found: list[Violation] = []
    for path, module, is_package in _modules():
        where = path.relative_to(ROOT).as_posix()
        found += check_source(path.read_text(), module, path=where, is_package=is_package)
    return found


# --- the project -------------------------------------------------------------------------------


def test_imports_point_one_way() -> None:
    found = [v for v in all_violations() if (v.path, v.imported) not in WAITING_FOR_ENGINE_EXPORT]
    assert not found, "imports against the layering:\n" + "\n".join(map(str, found))


def test_the_allow_list_holds_only_breaks_that_still_exist() -> None:
    actual = {(v.path, v.imported) for v in all_violations()}
    stale = sorted(WAITING_FOR_ENGINE_EXPORT - actual)
    assert not stale, f"fixed now, remove from WAITING_FOR_ENGINE_EXPORT: {stale}"


def test_every_module_is_checked() -> None:
    modules = {module for _, module, _ in _modules()}
    assert {"engine", "engine.dag.graph", "engine.store.migrations.env", "api.main"} <= modules
    assert {"schemas.jobs", "engine.contracts", "engine.jsonpointer"} <= modules


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_pure_packages_load_no_store_and_no_http_client() -> None:
    heavy = (*IO_LIBRARIES, "engine.store", "engine.http", "engine.runtime", "engine.jobs")
    heavy += ("engine.service", "fastapi", "starlette", "api")
    code = (
        "import sys\n"
        "import engine.dag, engine.contracts, engine.templates\n"
        "import engine.jsonpointer, engine.masking\n"
        f"heavy = {heavy!r}\n"
        "loaded = [m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy)]\n"
        "print(sorted(loaded))"
    )
    assert _run(code) == "[]"


def test_schemas_load_nothing_of_ours() -> None:
    code = (
        "import sys\n"
        "import schemas.jobs, schemas.interfaces, schemas.export\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('engine', 'api')))"
    )
    assert _run(code) == "[]"


def test_every_public_name_of_engine_resolves() -> None:
    import engine

    assert sorted(engine.__all__) == sorted(engine._EXPORTS)
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


@pytest.mark.parametrize("package", PURE)
def test_every_name_a_pure_package_exports_resolves(package: str) -> None:
    module = __import__(package, fromlist=["__all__"])
    assert module.__doc__
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


# --- the checker itself ------------------------------------------------------------------------

FAKE_PURE_MODULE = """\
from __future__ import annotations

from typing import TYPE_CHECKING

import networkx
from engine.errors import Problem
from engine.templates import Reference

if TYPE_CHECKING:
    from engine.store.records import Outcome


def later() -> None:
    import sqlalchemy.ext.asyncio
    from ..http import codec
    from .. import jobs, states
"""


def test_the_checker_finds_every_kind_of_import_in_a_pure_package() -> None:
    found = check_source(FAKE_PURE_MODULE, "engine.dag.fake", path="engine/dag/fake.py")
    assert [(v.line, v.imported) for v in found] == [
        (10, "engine.store.records"),
        (14, "sqlalchemy.ext.asyncio"),
        (15, "engine.http.codec"),
        (16, "engine.jobs"),
    ]
    assert str(found[0]) == (
        "engine/dag/fake.py:10: engine.dag.fake imports engine.store.records (a pure package "
        "loads no store, HTTP client, runtime, job handling or service)"
    )


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "api.fake",
            "import engine\nfrom engine import Engine, jsonpointer\nfrom engine.jobs import views",
            [(2, "engine.jsonpointer"), (3, "engine.jobs.views")],
        ),
        ("api.fake", "import engine.dag\n", [(1, "engine.dag")]),
        ("schemas.fake", "import re\nfrom engine.errors import Problem\n", [(2, "engine.errors")]),
        (
            "engine.fake",
            "from fastapi import FastAPI\nimport api.main\n",
            [(1, "fastapi"), (2, "api.main")],
        ),
        (
            "engine.store.fake",
            "from engine.runtime.worker import Worker\n",
            [(1, "engine.runtime.worker")],
        ),
        ("engine.store.fake", "from engine.dag import advance\nfrom .records import Outcome\n", []),
        ("engine.fake", "from engine.store import Store\nimport apispec\n", []),
    ],
)
def test_the_checker_on_other_fake_modules(
    module: str, source: str, expected: list[tuple[int, str]]
) -> None:
    found = check_source(source, module, path=module.replace(".", "/") + ".py")
    assert [(v.line, v.imported) for v in found] == expected


def test_relative_imports_resolve_from_a_package_init() -> None:
    found = list(
        imports_of("from .graph import x\nfrom ..store import y\n", "engine.dag", is_package=True)
    )
    assert found == [(1, "engine.dag.graph"), (2, "engine.store")]


def test_import_linter_contracts_hold() -> None:
    """The same rules as import-linter contracts (pyproject.toml), indirect imports included."""
    pytest.importorskip("importlinter")
    code = "from importlinter.cli import lint_imports_command as c; c.main(args=['--no-cache'])"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
