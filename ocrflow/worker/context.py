"""What the worker's startup puts in arq's `ctx`, under these names, for its functions."""

SETTINGS = "settings"
SERVICES = "services"  # jobs.services.Services
POOL = "pool"  # runtime.pool.OcrPool
TASKS = "tasks"  # the supervised background loops, by name
