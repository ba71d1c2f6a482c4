"""Tool-call formats, one file each: ``hermes`` (Qwen), ``llama3_json``, ``mistral``, ``generic``."""

from toolzoo.agents.formats.base import (
    ParsedReply, ToolFormat, detect_format, format_names, get_format, parse_error_count, register_format,
)

__all__ = ["ParsedReply", "ToolFormat", "detect_format", "format_names", "get_format", "parse_error_count",
           "register_format"]
