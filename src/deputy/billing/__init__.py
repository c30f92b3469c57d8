"""Metering, plans, invoices and budgets (depends on domain and store only)."""
