"""Versions under review and in production: the audit chain, canary decisions, autonomy rules.

Pure logic over `deputy.domain` data; the services layer reads and writes the rows."""
