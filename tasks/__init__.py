"""Thin Prefect tasks over kpdeliver's domain functions: `tasks.store` touches stores (each task
retried), `tasks.compute` computes (deterministic, not retried). Tasks take typed values: a config
section, store handles, keys, small records."""
