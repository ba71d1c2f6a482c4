"""The built-in agent kinds, one file each (registered with ``@register_agent``)."""
