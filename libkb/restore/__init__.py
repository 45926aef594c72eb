"""The restore engine: planned as pure functions, executed with an idempotent producer."""
