"""The agent harness: one turn of a conversation, in reasoning mode (a tool-calling loop) or
guided mode (procedures as state machines), behind the guardrails, with every step recorded so
a crashed turn resumes without repeating work. Depends on domain, llm, knowledge, tools and
guardrails only; persistence comes in through `TurnJournal` (the services implement it)."""
