"""The slim stdio entry point (``toolzoo/tools/serve_slim.py``): the ``mcp`` and ``mcp.server``
package ``__init__``s are skipped, and the server still serves everything over the SDK's client.

Each check that touches ``sys.modules["mcp*"]`` runs in a fresh interpreter (the test process
has the real packages loaded). The same entry under the real process tier (bubblewrap, own
uids, limits) is checked in ``tests/sandbox/test_slim_server.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from toolzoo.tools.serve_slim import SCRIPT, SLIM_MCP_NEEDS
from toolzoo.tools.session import MCPSession, stdio_params

SECRET = "slim-admin-secret-0123456789"
# What must never load in a slim stdio server: the client (httpx), the high-level MCPServer, and
# what uvicorn (click), gymnasium (spaces) and the CEL REPL (typer) would bring. (importtime also
# lists an import that fails at once, as a blocked ``uvicorn.main`` does, so those are not named.)
NEVER = ("mcp.client", "mcp.server.mcpserver", "mcp.server.fastmcp", "httpx", "click", "gymnasium.spaces", "typer")


def imported(importtime_stderr: str) -> set[str]:
    """The modules a ``python -X importtime`` run imported, from its stderr."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def run_py(code: str) -> str:
    """Run ``code`` in a fresh interpreter with the slim prelude loaded (not run) as ``slim``."""
    prelude = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("slim", {SCRIPT!r})
        slim = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(slim)
    """)
    r = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_stdio_server_serves_without_the_package_inits(tmp_path):
    """The real script over stdio: tools listed, a call answered, admin state read, errors as
    usual -- and, from ``-X importtime``, the slim path was taken (no client, no MCPServer)."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    secret.chmod(0o400)

    async def main():
        params = stdio_params([sys.executable, "-X", "importtime", SCRIPT, "retail_orders", "--seed", "1",
                               "--admin", "--admin-secret-file", str(secret)])
        async with MCPSession(params, admin_secret=SECRET) as s:
            tools = {t.name for t in await s.list_tools()}
            ok = await s.call_tool("get_order", {"order_id": "o0001"})
            bad = await s.call_tool("get_order", {"order_id": 3})
            snap = await s.snapshot()
            return tools, ok, bad, snap, s.server_stderr(limit=10**7)

    tools, ok, bad, snap, stderr = asyncio.run(main())
    assert {"get_order", "cancel_order"} <= tools and not any(n.startswith("_toolzoo_") for n in tools)
    assert not ok.is_error and ok.structured["id"] == "o0001"
    assert bad.is_error and "order_id" in bad.content
    assert "o0001" in snap["orders"]
    mods = imported(stderr)
    # (importtime logs import statements: what importlib.import_module loads itself is not listed)
    assert {"mcp.server.lowlevel.server", "mcp.server.runner", "mcp_types"} <= mods, "importtime output not seen"
    leaked = sorted(m for m in mods if any(m == n or m.startswith(n + ".") for n in NEVER))
    assert not leaked, f"the slim server imported {leaked}"


def test_packages_are_made_from_the_real_spec_and_not_run():
    out = run_py("""
        sys.path.pop(0)
        slim._keep_heavy_imports_out()  # the script's whole prelude
        assert sys.modules["uvicorn"] is None and sys.modules["gymnasium"] is None
        import mcp, mcp.server, importlib.util
        from toolzoo.tools.server import DomainServer, run_stdio  # server.py's own imports
        assert mcp.__path__ == list(importlib.util.find_spec("mcp").submodule_search_locations)
        assert mcp.server.__spec__.origin.endswith("mcp/server/__init__.py")
        assert "__getattr__" in vars(mcp) and "__getattr__" in vars(mcp.server), "an __init__ ran"
        assert not [k for k in sys.modules if k.startswith(("mcp.client", "mcp.server.mcpserver"))]
        print("ok")
    """)
    assert out.strip() == "ok"


def test_a_name_the_skipped_init_binds_still_works():
    """Code that asks a slim package for what its ``__init__`` binds gets it: the init runs then."""
    out = run_py("""
        assert slim.skip_package_inits()
        from mcp.server import session  # a submodule: imported, the init still skipped
        import mcp
        assert "__getattr__" in vars(mcp.server)
        from mcp import Client, ClientSession  # bound only by mcp/__init__
        from mcp.server import MCPServer, Server
        import mcp.server.lowlevel as low
        assert Server is low.Server and "__getattr__" not in vars(mcp) and "__getattr__" not in vars(mcp.server)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_a_changed_sdk_layout_falls_back_to_the_normal_import():
    out = run_py("""
        assert not slim.skip_package_inits(needs=(("mcp.server.not_a_module", "X"),))
        assert not slim.skip_package_inits(needs=(("mcp.server.lowlevel", "NotAName"),))
        assert not [k for k in sys.modules if k == "mcp" or k.startswith("mcp.")], "half-slim modules left"
        import mcp
        from mcp.server import Server
        assert "__getattr__" not in vars(mcp) and mcp.Client, "the normal import did not run"
        print("ok")
    """)
    assert out.strip() == "ok"


def test_nothing_is_skipped_when_mcp_is_already_imported():
    out = run_py("""
        import mcp
        assert not slim.skip_package_inits()
        assert "__getattr__" not in vars(mcp)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_the_needs_are_what_the_sdk_binds():
    """server.py imports ``Server`` from ``mcp.server.lowlevel``: the same object the SDK's
    ``mcp.server.Server`` is (the normal import, this process)."""
    import importlib

    import mcp.server
    import mcp.server.lowlevel

    assert mcp.server.Server is mcp.server.lowlevel.Server
    for modname, attr in SLIM_MCP_NEEDS:
        assert hasattr(importlib.import_module(modname), attr)
