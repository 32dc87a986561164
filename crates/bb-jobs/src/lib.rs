//! Durable jobs in the database: leases, retries with backoff and jitter, schedules, run history.
