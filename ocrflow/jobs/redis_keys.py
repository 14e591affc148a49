"""Every Redis key, channel and arq function name ocrflow uses, in one place (arq's
`constants.py` does the same for arq's own). The arq queue itself is `Settings.queue_name`."""

# arq function names.
PROCESS_JOB = "process_job"
PROCESS_RANGE = "process_range"  # one range of a document read across workers
MERGE_JOB = "merge_job"  # its outputs, once every range has ended
SEND_CALLBACK = "send_callback"
SEND_EMAIL = "send_email"
# arq's own keys, which ocrflow reads and writes around arq (arq.constants).
ARQ_JOB = "arq:job:"
ARQ_IN_PROGRESS = "arq:in-progress:"
ARQ_RESULT = "arq:result:"

# Job records and their per-caller indexes.
JOB_PREFIX = "ocrflow:job:"
JOB_INDEX_PREFIX = "ocrflow:jobs:"  # one sorted index of job ids per caller
# Events: a capped stream per job and one per owner (the feed of all its jobs), and the pub/sub
# channel that wakes listeners (the streams are the truth).
EVENTS_PREFIX = "ocrflow:events:"
OWNER_EVENTS_PREFIX = "ocrflow:owner-events:"
EVENTS_CHANNEL = "ocrflow:events:live"
# Runs: every run waiting to start and under way (job id -> arq job id), and leases.
QUEUED = "ocrflow:queued"
RUNNING = "ocrflow:running"
LEASE_PREFIX = "ocrflow:lease:"
REAP_PREFIX = "ocrflow:reap:"
# A document read in ranges: each range's pages and state (queued, done), by range name; and
# the pages of a run already announced (a range run again after its worker died reads them
# again, but its page events and page counts are sent once).
RANGES_PREFIX = "ocrflow:ranges:"
ANNOUNCED_PREFIX = "ocrflow:announced:"
# Answering a submission with another job (Idempotency-Key, in flight, result cache).
IDEMPOTENCY_PREFIX = "ocrflow:idempotency:"
IN_FLIGHT_PREFIX = "ocrflow:inflight:"
RESULT_PREFIX = "ocrflow:result:"
# Limits: per-caller request rate and active jobs.
RATE_PREFIX = "ocrflow:rate:"
REFUSED_RATE_PREFIX = "ocrflow:refused:"  # requests refused a key, per client address
ACTIVE_PREFIX = "ocrflow:active:"
ADMITTING = "ocrflow:admitting"  # jobs admitted, their queue entry not written yet
FAIR = "ocrflow:fair"  # each caller's place in the queue's virtual time (fair sharing)
# Direct uploads under way, and S3 events already turned into jobs.
UPLOAD_PREFIX = "ocrflow:upload:"
S3_EVENT_PREFIX = "ocrflow:s3event:"
# Counters, worker heartbeats, and the lock that lets one worker sweep storage each round.
STATS = "ocrflow:stats"
# Every caller's newest jobs, for operators (the dashboard): capped, newest kept. Ids sort by
# creation time, so all scores are 0 and the set is read by lex order, as each caller's index.
RECENT_JOBS = "ocrflow:recent-jobs"
RECENT_JOBS_KEPT = 5000
# Per minute: jobs ended (by state) and pages read; kept two hours, for the dashboard's chart.
THROUGHPUT_PREFIX = "ocrflow:throughput:"
THROUGHPUT_KEEP = 2 * 3600
WORKER_PREFIX = "ocrflow:worker:"
SWEEP_LOCK = "ocrflow:sweep"


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def job_index(owner: str) -> str:
    return JOB_INDEX_PREFIX + owner


def events_key(job_id: str) -> str:
    return EVENTS_PREFIX + job_id


def owner_events_key(owner: str) -> str:
    return OWNER_EVENTS_PREFIX + owner


def announced_key(job_id: str, run: int) -> str:
    return f"{ANNOUNCED_PREFIX}{job_id}:{run}"


def lease_key(job_id: str) -> str:
    return LEASE_PREFIX + job_id


def active_key(caller: str) -> str:
    return ACTIVE_PREFIX + caller


def arq_job_id(job_id: str, run: int) -> str:
    """arq refuses a job id it still holds, so each explicit run of a job gets its own."""
    return f"{job_id}:{run}"


def ranges_key(job_id: str) -> str:
    return RANGES_PREFIX + job_id


def unit(job_id: str, part: str) -> str:
    """A piece of a job's run that runs on its own, with its own lease: `j_…#5-12` (a range),
    `j_…#merge`. What RUNNING lists, and what leases are kept under."""
    return f"{job_id}#{part}"


def range_arq_id(job_id: str, run: int, part: str) -> str:
    return f"{job_id}:{run}:{part}"


def throughput_key(minute: int) -> str:
    """The counts of one minute (minutes since the epoch)."""
    return f"{THROUGHPUT_PREFIX}{minute}"
