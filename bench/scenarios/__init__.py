"""The benchmark scenarios, one module per family; bench/__main__.py runs them in this order.

Each scenario returns a JSON-able dict with its `setup` (process counts, concurrency, rate, duration, cores, CPU
of the load generator and of every component), its measurements and its ratios.

1. accept  — closed loop at a few concurrencies; open loop at fixed rates to find the sustainable rate
             (highest rate with P99 ≤ 50 ms and no errors).
2. ceiling — pgbench running the SQL of one accept, same client count, same database; accept ÷ ceiling.
3. pipeline — a burst of N payments through the API until every one is captured, posted to the ledger and its
             `payment.captured` webhook verified by the receiver; then fixed-rate runs watching the backlog.
4. relay   — outbox events dispatched per second (no-op subscriber) vs a no-op Celery task on the same broker
             and worker processes; relay ÷ Celery.
5. replay  — idempotent replays (same key, same body) vs first accepts at the same concurrency.
6. ledger  — `python -m bench.ledger` when that module exists (the ledger issue's benchmark), else "not present".

During accept, ceiling and replay the Celery worker stops consuming (accepted payments wait in the outbox, as
they would behind a slow worker), so those scenarios measure the API and the database alone; the backlog they
leave is deleted before the worker resumes. Pipeline and relay run with the worker consuming.

Modules:

- `shared`   — `Plan` (sizes and durations of a quick or full run), `Bench` (what every scenario uses: the
               stack, the merchants, the load generator, SQL on the bench database, dropping a backlog),
               `machine()` (what the numbers were measured on) and the small output helpers;
- `accept`   — scenarios 1, 2 and 5: `scenario_accept_ceiling_replay` (the worker paused);
- `pipeline` — scenario 3: `scenario_pipeline`, its backlog poller and `ledger_verify` afterwards;
- `relay`    — scenario 4: `scenario_relay`, outbox relay vs no-op Celery tasks;
- `ledger`   — scenario 6: `scenario_ledger`, which runs `python -m bench.ledger` and reports its JSON.

Importing this package imports none of them.
"""
