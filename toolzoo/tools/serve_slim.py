"""A slim stdio tool server for sandboxes: what ``toolzoo serve-mcp DOMAIN --transport stdio``
serves, without what serving never uses.

    python /path/to/toolzoo/tools/serve_slim.py DOMAIN [--seed N] [--admin --admin-secret-file F]

Run it as a *script* (``SCRIPT`` below), not with ``-m``: ``-m`` imports the ``toolzoo``
package first, and that registers the gymnasium env (gymnasium, ~13 MiB unique per process).
Before anything else it also keeps two imports out:

* ``gymnasium``: blocked the standard way (``sys.modules[name] = None``), so ``toolzoo``'s
  registration takes its existing "gymnasium missing" branch;
* ``cel.cli``: the ``common-expression-language`` package imports its own REPL (typer,
  prompt_toolkit, pygments, rich) from ``cel/__init__``; an empty module stands in for it, as
  a tool server never runs that REPL.

The CLI itself (argparse tree, rich console) is not imported either. ``bench/density.py``
measures the unique memory per process sandbox with each entry point.
"""

from __future__ import annotations

import os
import sys
import types

SCRIPT = os.path.abspath(__file__)


def _keep_heavy_imports_out() -> None:
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(SCRIPT):
        sys.path.pop(0)  # run as a script: this folder's modules (cel.py, ...) must not shadow packages
    sys.modules.setdefault("gymnasium", None)  # type: ignore[arg-type]
    if "cel" not in sys.modules:
        sys.modules["cel.cli"] = types.ModuleType("cel.cli", "not loaded: a tool server never runs the CEL REPL")


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
