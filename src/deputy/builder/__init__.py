"""The builder: goal + materials → AgentSpec draft with provenance, a scenario suite and a
build report; and change requests in plain language → a new draft and its diff."""
