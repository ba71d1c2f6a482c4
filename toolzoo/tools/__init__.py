"""Tool domains: the YAML format, CEL, the state store, the effect interpreter and MCP servers."""
