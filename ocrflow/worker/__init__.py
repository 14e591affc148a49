"""The arq worker: runs of jobs on the OCR pool, leases and the reaper, callbacks and e-mail."""
