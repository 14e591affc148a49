"""Processes and what they share: the OCR pool, the supervisor, embedded Redis, logs, the
address guard for outbound requests, and supervised background tasks."""
