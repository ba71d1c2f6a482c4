"""Suite-wide: the guard that fails (instead of hanging) a session that leaks threads or processes."""

pytest_plugins = ["toolzoo.testing.suite_guard"]
