"""Job state in Redis: records, transitions, events, admission, reuse, limits and counters."""
