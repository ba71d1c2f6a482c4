"""The baseline: the official MCP SDK serving a trivial Python tool (as in shared/baselines)."""


from mcp.server.mcpserver import MCPServer

mcp = MCPServer("raw-baseline")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


if __name__ == "__main__":
    mcp.run("stdio")
