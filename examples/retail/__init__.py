"""A sample client platform: tau2-bench's retail shop as a REST and MCP backend (see README.md)."""
