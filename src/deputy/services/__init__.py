"""The application layer: one function per platform capability, each taking the acting
principal; tenant checks happen in `deputy.services.access` and the tenant-scoped session."""
