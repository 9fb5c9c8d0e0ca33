"""Thin Prefect tasks over kpdeliver's domain functions. Retries on I/O tasks only; no result
caching on compute tasks (their inputs are large in-memory tables; resumption is handled by
the release's staging area, keyed on the input fingerprint)."""
