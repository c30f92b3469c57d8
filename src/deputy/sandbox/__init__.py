"""The sandbox: an agent version proven against simulated customers in an isolated tool world.

- `ports`: what a trial needs (a tool world per trial, a customer, a judge) and what it offers
  for evaluation; the results themselves are data (`deputy.domain.sandbox_results`);
- `worlds*`: tool worlds: an in-process simulation of a backend, recorded responses, staging,
  and their composition; `replay`: the reference end state of a scenario;
- `customers`, `customer_prompt`, `judge`: the model-played (or scripted) customer and the
  natural-language judge;
- `evaluate`: a trial's checks and reward (tau2 semantics); `stats`, `scorecard`, `compare`;
- `trial`, `runner`, `models`: one conversation, and a suite x k trials with per-model
  concurrency limits and resumption;
- `tau2`: tau2-bench task files as scenario suites; `oracle`: the reference-action agent;
  `bench`: tau2-bench runs with per-task results."""
