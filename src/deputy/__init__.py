"""Deputy: an open-source, self-hostable Agents-as-a-Service platform."""

__version__ = "0.1.0"
