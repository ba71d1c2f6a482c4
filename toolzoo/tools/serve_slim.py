"""A slim stdio tool server for sandboxes: what ``toolzoo serve-mcp DOMAIN --transport stdio``
serves, without what serving never uses.

    python /path/to/toolzoo/tools/serve_slim.py DOMAIN [--seed N] [--admin --admin-secret-file F]

Run it as a *script* (``SCRIPT`` below), not with ``-m``: ``-m`` imports the ``toolzoo``
package first, and that registers the gymnasium env (gymnasium, ~13 MiB unique per process).
Before anything else it keeps these imports out (``_keep_heavy_imports_out``):

* ``gymnasium``: blocked the standard way (``sys.modules[name] = None``), so ``toolzoo``'s
  registration takes its existing "gymnasium missing" branch;
* ``cel.cli``: the ``common-expression-language`` package imports its own REPL (typer,
  prompt_toolkit, pygments, rich) from ``cel/__init__``; an empty module stands in for it, as
  a tool server never runs that REPL;
* ``uvicorn``: blocked the standard way; ``sse_starlette`` (pulled in by the SDK's HTTP
  transport modules) then takes its "uvicorn not installed" branch (no click, multiprocessing);
* the ``mcp`` and ``mcp.server`` package ``__init__``s (:func:`skip_package_inits`): the
  packages are made from their real specs but not run, so the SDK's client (httpx, the
  in-memory transport) and the high-level ``MCPServer`` are never imported; ``mcp.types``,
  ``mcp.server.lowlevel`` and ``mcp.server.stdio`` import from the real folders as usual.
  If they fail to (the SDK's layout changed) everything is undone and the normal import runs;
  a name only the skipped ``__init__`` binds (``from mcp import Client``) runs it on demand.

What is left of the SDK is what ``mcp/server/lowlevel/server.py`` imports at module level:
starlette, the auth and streamable-HTTP modules (~4 MiB, HTTP-only) come with it through
``from X import Name`` (a lazy module loads on that very lookup) and default arguments, and
OpenTelemetry is used on every message (``OpenTelemetryMiddleware``), so they stay.

The CLI itself (argparse tree, rich console) is not imported either. In the process tier's
jail this entry takes 44.1 MiB unique memory per sandbox (52.7 MiB before the last two cuts,
71.4 MiB through the CLI); ``bench/density.py`` measures it, ``tests/tools/test_serve_slim.py``
and ``tests/sandbox/test_slim_server.py`` check the slim path is taken.
"""

from __future__ import annotations

import os
import sys
import types

SCRIPT = os.path.abspath(__file__)


# The SDK modules a stdio server imports, and a name each must define: with the ``mcp`` and
# ``mcp.server`` package ``__init__``s skipped these must still import, else the normal import runs.
SLIM_MCP_NEEDS = (("mcp.types", "Tool"), ("mcp.server.lowlevel", "Server"), ("mcp.server.stdio", "stdio_server"))
_SKIPPED_INITS = ("mcp", "mcp.server")


def _keep_heavy_imports_out() -> None:
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(SCRIPT):
        sys.path.pop(0)  # run as a script: this folder's modules (cel.py, ...) must not shadow packages
    sys.modules.setdefault("gymnasium", None)  # type: ignore[arg-type]
    # sse_starlette (imported by the SDK's HTTP transport) patches uvicorn's shutdown when uvicorn
    # is importable; blocked, it takes its "uvicorn not installed" branch. Serving stdio never
    # runs uvicorn (``run_http`` is the CLI's, not this script's).
    sys.modules.setdefault("uvicorn", None)  # type: ignore[arg-type]
    # starlette's form parser (HTTP only) takes its "no multipart package" branch the same way.
    sys.modules.setdefault("python_multipart", None)  # type: ignore[arg-type]
    sys.modules.setdefault("multipart", None)  # type: ignore[arg-type]
    if "cel" not in sys.modules:
        sys.modules["cel.cli"] = types.ModuleType("cel.cli", "not loaded: a tool server never runs the CEL REPL")
    defer_model_builds()
    skip_package_inits()


def defer_model_builds() -> None:
    """Make pydantic's ``defer_build`` the default for models defined from here on: a model's
    validator and serializer are built on its first use, not at import. The SDK's protocol
    types are ~150 models of which a tool server uses a few dozen. ``defer_build`` is a
    documented pydantic setting; a model that sets its own value keeps it."""
    import pydantic

    pydantic.BaseModel.model_config.setdefault("defer_build", True)


def skip_package_inits(names: tuple[str, ...] = _SKIPPED_INITS, needs=SLIM_MCP_NEEDS) -> bool:
    """Import the SDK's packages ``names`` without running their ``__init__.py``: each is made
    from its real spec (``importlib.util.find_spec``: the real folder, so its submodules import
    as usual) but not executed. ``mcp/__init__`` imports the whole client (httpx, the in-memory
    transport) and ``mcp/server/__init__`` the high-level ``MCPServer``; a stdio server uses
    neither. Then the modules in ``needs`` are imported; if any fails (the SDK's layout changed)
    everything is undone and the normal import runs later. A name the skipped ``__init__``
    would have bound (``from mcp import Client``) still works: the first such lookup runs the
    real ``__init__`` into the package (the saving is then lost, nothing breaks). Returns
    whether the slim packages are in place."""
    import importlib
    import importlib.util

    if any(n in sys.modules for n in names):
        return False
    try:
        for name in names:
            spec = importlib.util.find_spec(name)  # the parent is already the slim one
            if spec is None or spec.submodule_search_locations is None or spec.loader is None:
                raise ImportError(f"{name} is not a package")
            module = importlib.util.module_from_spec(spec)  # __path__, __file__, __spec__; not run
            module.__getattr__ = _run_init_on_miss(module)  # type: ignore[attr-defined]
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)
        for modname, attr in needs:
            if not hasattr(importlib.import_module(modname), attr):
                raise ImportError(f"{modname} has no {attr}")
        return True
    except Exception:
        # Undo: the slim packages and every submodule imported under them; the normal import
        # of ``mcp`` then runs from the start.
        for key in [k for k in sys.modules if any(k == n or k.startswith(n + ".") for n in names)]:
            del sys.modules[key]
        return False


def _run_init_on_miss(module: types.ModuleType):
    """A module ``__getattr__`` (PEP 562) for a package whose ``__init__`` was skipped. A
    submodule's name imports that submodule (``from mcp.server import session``: the import
    system asks the package first); any other name the package lacks runs the real
    ``__init__`` into it, once, and is then looked up as usual."""
    import importlib
    import importlib.util

    def __getattr__(name: str):
        if name.startswith("__") and name.endswith("__") and name != "__all__":
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
        if name != "__all__" and importlib.util.find_spec(f"{module.__name__}.{name}") is not None:
            return importlib.import_module(f"{module.__name__}.{name}")
        if module.__dict__.pop("__getattr__", None) is not None:  # once
            module.__spec__.loader.exec_module(module)  # type: ignore[union-attr]
        return getattr(module, name)

    return __getattr__


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="serve_slim", description="serve a domain as an MCP server over stdio")
    parser.add_argument("domain", help="built-in domain name or path to a domain YAML")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--admin", action="store_true", help="offer the admin tools to holders of the secret")
    parser.add_argument("--admin-secret-file", default=None)
    args = parser.parse_args(argv)
    if args.admin and not args.admin_secret_file:
        raise SystemExit("serve_slim: --admin needs --admin-secret-file (a file only this server's user can read)")

    from toolzoo.tools.server import DomainServer, read_secret_file, run_stdio
    from toolzoo.tools.zoo import get_domain

    secret = read_secret_file(args.admin_secret_file) if args.admin else None
    run_stdio(DomainServer(get_domain(args.domain), seed=args.seed, admin=args.admin, admin_secret=secret))
    return 0


if __name__ == "__main__":
    _keep_heavy_imports_out()
    raise SystemExit(main())
