"""E-mail when a job ends: plain text and HTML with the job's link, sent over SMTP as its own
arq job. A message that cannot be sent is recorded on the job; it never fails the job."""

import html
import json
import logging
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
from arq import Retry

from ocrflow.jobs.records import HandlerRun, Job, now
from ocrflow.jobs.services import Services
from ocrflow.settings import Settings
from ocrflow.worker.context import SERVICES
from ocrflow.worker.retries import backoff

log = logging.getLogger(__name__)


def message_for(job: Job, settings: Settings) -> EmailMessage:
    base = (settings.public_url or "").rstrip("/")
    link = f"{base}/v1/jobs/{job.id}"
    pages = job.progress.pages_total or 0
    outcome = job.error.message if job.error else f"{pages} page{'' if pages == 1 else 's'} read"
    checks, verdict = _verdict(job)
    message = EmailMessage()
    message["Subject"] = f"ocrflow: {job.source.filename} {job.state}" + (
        f"; {checks}" if checks else ""
    )
    message["From"] = settings.smtp_from
    message["To"] = str(job.notify_email)
    # Mail filters mark down a message without these; the id names the job, so a retried send
    # of the same ending is seen as the same message.
    message["Date"] = formatdate(usegmt=True)
    domain = settings.smtp_from.rpartition("@")[2] or "ocrflow.invalid"
    message["Message-ID"] = f"<{job.id}.{job.run}@{domain}>"  # job ids are unique
    steps = [(name, handler_line(run)) for name, run in job.handlers.items()]
    plain = "".join(f"{name}: {line}\n" for name, line in steps)
    message.set_content(
        (f"{verdict}\n\n" if verdict else "")
        + f"Job {job.id} ({job.source.filename}) {job.state}: {outcome}.\n\n"
        + (plain + "\n" if plain else "")
        + f"{link}\n"
    )
    links = "".join(
        f'<li><a href="{html.escape(f"{link}/outputs/{name}")}">{html.escape(name)}</a></li>'
        for name in job.outputs
    )
    message.add_alternative(
        (f"<p><b>{html.escape(verdict)}</b></p>" if verdict else "")
        + f'<p>Job <a href="{html.escape(link)}">{job.id}</a> '
        f"({html.escape(job.source.filename)}) <b>{job.state}</b>: {html.escape(outcome)}.</p>"
        + "".join(f"<p><b>{html.escape(name)}</b>: {html.escape(line)}</p>" for name, line in steps)
        + f"<ul>{links}</ul>",
        subtype="html",
    )
    return message


def _verdict(job: Job) -> tuple[str, str]:
    """The job's checks for a subject (`failed 2 checks`), and in words for the first lines."""
    verdict = job.verdict
    if verdict is None:
        return "", ""
    if verdict.passed:
        return "checks passed", "Every check passed."
    count = len(verdict.failed)
    failed = f"failed {count} check{'' if count == 1 else 's'}"
    reasons = "".join(f"\n- {item.rule}: {item.reason}" for item in verdict.failed)
    return failed, f"It {failed}:{reasons}"


def handler_line(run: HandlerRun) -> str:
    """A handler's run in a line: its state, then its summary or its error."""
    if run.error is not None:
        return f"{run.state}: {run.error.code}: {run.error.message}"
    if run.summary is not None:
        return f"{run.state}: {json.dumps(run.summary, ensure_ascii=False)[:1000]}"
    return run.state


async def send_email(ctx: dict[str, Any], job_id: str) -> dict[str, str]:
    services: Services = ctx[SERVICES]
    settings, attempt = services.settings, ctx["job_try"]
    job = await services.jobs.get(job_id)
    if job is None or not job.notify_email or not settings.smtp_host:
        return {"job_id": job_id, "email": "skipped"}
    error, final = None, False
    try:
        await aiosmtplib.send(
            message_for(job, settings),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            timeout=settings.smtp_timeout,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job %s: e-mail to %s failed: %s", job_id, job.notify_email, error)
    except Exception as exc:  # the message itself cannot be made or sent: trying again won't help
        error, final = f"{type(exc).__name__}: {exc}", True
        log.exception("job %s: e-mail to %s cannot be sent", job_id, job.notify_email)
    record = {"channel": "email", "attempt": attempt, "at": now().isoformat(), "error": error}
    await services.jobs.update(job_id, notifications=[*job.notifications, record])
    if error and not final and attempt < settings.mail_max_tries:
        raise Retry(defer=backoff(attempt, settings.mail_backoff))
    return {"job_id": job_id, "email": "sent" if error is None else "failed"}
