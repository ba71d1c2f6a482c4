"""Sandboxes: one contract, tiers inline | process | docker | kubernetes, pools and a reaper."""

from toolzoo.sandbox.base import ExecResult, Sandbox, SandboxLimits, SandboxSpec, create_sandbox

__all__ = ["ExecResult", "Sandbox", "SandboxLimits", "SandboxSpec", "create_sandbox"]
