"""Logging, metrics and tracing shared by every entry point."""
