"""Pure data: ids, the AgentSpec and its parts, tenancy, errors. Depends on nothing of ours."""
