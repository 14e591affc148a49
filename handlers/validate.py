"""The built-in `validate` handler: rules over a job's fields and text, out as `report.json`,
`report.csv` and a readable `report.html`, with pass or fail and the failed rules in its summary.

The fields come from the `fields` handler run before it in the same job, or from a `fields`
spec of its own."""

import html
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ocrflow.handlers.api import Context, Document, Handler, HandlerFailed
from ocrflow.handlers.fields import FieldsParams, fields_json, find_fields
from ocrflow.handlers.patterns import compile_pattern
from ocrflow.pipeline.sheets import csv_text

Check = Literal["required", "pattern", "range", "date", "one_of"]
DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
)
_NUMBER = re.compile(r"-?[\d.,]+")
MAX_LISTED = 50  # failed rules named in the summary
MAX_REASON = 200  # characters of a failed rule's reason there


class Rule(BaseModel):
    """One rule over a field (`field`) or, without one, over the document's text."""

    model_config = ConfigDict(extra="forbid")

    check: Check = Field(
        description="`required`: the field was found; `pattern`: it (or the text) matches "
        "`pattern`; `range`: read as a number, it lies within `min`-`max`; `date`: read as a "
        "date in one of `formats`, it lies within `after`-`before`; `one_of`: it is one of "
        "`values`"
    )
    field: str | None = Field(
        None, description="the field the rule checks; without one, the document's text"
    )
    name: str | None = Field(
        None, description="how the report names the rule; `field:check` otherwise"
    )
    pattern: str | None = Field(
        None,
        description="`pattern`: a regular expression (RE2: no backreferences or lookaround) "
        "the value (or the text) must contain",
    )
    min: float | None = Field(
        None, description="`range`: the least the number may be (1,234.50 and 1.234,50 both read)"
    )
    max: float | None = Field(None, description="`range`: the most the number may be")
    formats: list[str] = Field(
        default_factory=lambda: list(DATE_FORMATS),
        description="`date`: the formats a date may be written in (Python strptime)",
    )
    after: str | None = Field(None, description="`date`: on or after this ISO date")
    before: str | None = Field(None, description="`date`: on or before this ISO date")
    values: list[str] | None = Field(None, description="`one_of`: the values allowed")
    ignore_case: bool = Field(
        True, description="`pattern` and `one_of`: upper and lower case count as the same"
    )

    @model_validator(mode="after")
    def _complete(self) -> "Rule":
        if self.check == "pattern":
            if not self.pattern:
                raise ValueError("a pattern rule needs `pattern`")
            compile_pattern(self.pattern, ignore_case=self.ignore_case)
        if self.check == "range" and self.min is None and self.max is None:
            raise ValueError("a range rule needs `min`, `max` or both")
        if self.check == "one_of" and not self.values:
            raise ValueError("a one_of rule needs `values`")
        if self.check in ("range", "date", "one_of") and self.field is None:
            raise ValueError(f"a {self.check} rule needs `field`")
        for bound in (self.after, self.before):
            if bound is not None:
                datetime.fromisoformat(bound)
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.field or 'text'}:{self.check}"


class ValidateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[Rule], Field(min_length=1, max_length=500)] = Field(
        description="the rules to check (each below)"
    )
    fields: FieldsParams | None = Field(
        None,
        description="the fields to find, as the `fields` handler takes them; without it, the "
        "rules read what a `fields` handler run before found",
    )


def number(value: str) -> float | None:
    """A number as forms write it: `1,234.50`, `1.234,50`, `$ 12`, `-3`."""
    match = _NUMBER.search(value.replace(" ", ""))
    if match is None:
        return None
    text = match.group()
    comma, dot = text.rfind(","), text.rfind(".")
    if comma > dot:  # the comma is the decimal mark if two digits or fewer follow it, last
        decimals = len(text) - comma - 1
        text = text.replace(".", "")
        text = (
            text.replace(",", ".")
            if decimals <= 2 and text.count(",") == 1
            else text.replace(",", "")
        )
    else:
        text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def date(value: str, formats: list[str]) -> datetime | None:
    text = " ".join(value.replace(",", ", ").split()).replace(" ,", ",")
    for form in formats:
        try:
            return datetime.strptime(text, form)
        except ValueError:
            continue
    return None


def check(rule: Rule, value: str | None) -> tuple[bool, str]:
    """Whether `value` (a field's, or the text) passes `rule`, and why not."""
    if value is None or not value.strip():
        return False, "missing" if rule.field else "the document has no text"
    reason = _CHECKS[rule.check](rule, value)
    return not reason, reason


def _required(rule: Rule, value: str) -> str:
    return ""


def _pattern(rule: Rule, value: str) -> str:
    assert rule.pattern is not None
    found = compile_pattern(rule.pattern, ignore_case=rule.ignore_case).search(value)
    return "" if found else f"does not match {rule.pattern}"


def _range(rule: Rule, value: str) -> str:
    read = number(value)
    if read is None:
        return f"{value!r} is not a number"
    if rule.min is not None and read < rule.min:
        return f"{read:g} is less than {rule.min:g}"
    if rule.max is not None and read > rule.max:
        return f"{read:g} is more than {rule.max:g}"
    return ""


def _date(rule: Rule, value: str) -> str:
    when = date(value, rule.formats)
    if when is None:
        return f"{value!r} is not a date"
    if rule.after and when < datetime.fromisoformat(rule.after):
        return f"{when:%Y-%m-%d} is before {rule.after}"
    if rule.before and when > datetime.fromisoformat(rule.before):
        return f"{when:%Y-%m-%d} is after {rule.before}"
    return ""


def _one_of(rule: Rule, value: str) -> str:
    assert rule.values is not None
    fold = str.casefold if rule.ignore_case else str
    if fold(value.strip()) in {fold(v) for v in rule.values}:
        return ""
    return f"{value!r} is not one of {', '.join(rule.values)}"


_CHECKS: dict[Check, Callable[[Rule, str], str]] = {
    "required": _required,
    "pattern": _pattern,
    "range": _range,
    "date": _date,
    "one_of": _one_of,
}


def _fields(document: Document, params: ValidateParams, context: Context) -> dict[str, Any]:
    if params.fields is not None:
        found = find_fields(document, params.fields)
        return json.loads(fields_json(found))["fields"]  # type: ignore[no-any-return]
    written = context.read("fields.json")
    if written is None:
        if any(rule.field for rule in params.rules):
            raise HandlerFailed(
                "validate has rules over fields but no fields: run the `fields` handler before "
                "it, or give validate a `fields` spec"
            )
        return {}
    return json.loads(written)["fields"]  # type: ignore[no-any-return]


def report(
    document: Document, params: ValidateParams, fields: dict[str, Any]
) -> list[dict[str, Any]]:
    results = []
    for rule in params.rules:
        value: str | None = document.text
        page: int | None = None
        if rule.field is not None:
            found = fields.get(rule.field)
            value, page = (found["value"], found["page"]) if found else (None, None)
        passed, reason = check(rule, value)
        results.append(
            {
                "rule": rule.label,
                "field": rule.field,
                "check": rule.check,
                "passed": passed,
                "value": value if rule.field else None,
                "page": page,
                "reason": reason,
            }
        )
    return results


def report_csv(results: list[dict[str, Any]]) -> str:
    columns = ["rule", "field", "check", "passed", "value", "page", "reason"]
    return csv_text(
        columns, (["" if row[c] is None else row[c] for c in columns] for row in results)
    )


def report_html(document: Document, passed: bool, results: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return f"<td>{html.escape('' if value is None else str(value))}</td>"

    rows = "\n".join(
        f'<tr class="{"pass" if row["passed"] else "fail"}">'
        + cell(row["rule"])
        + cell("pass" if row["passed"] else "fail")
        + cell(row["value"])
        + cell(row["page"])
        + cell(row["reason"])
        + "</tr>"
        for row in results
    )
    verdict = "passed" if passed else "failed"
    title = html.escape(f"{document.filename}: {verdict}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd;
  overflow-wrap: anywhere; }}
tr.fail td:nth-child(2) {{ color: #b00020; font-weight: 600; }}
tr.pass td:nth-child(2) {{ color: #1b5e20; }}
</style></head><body>
<h1>{title}</h1>
<p>Job {html.escape(document.job_id)}: {sum(r["passed"] for r in results)} of {len(results)}
rules passed.</p>
<table><thead><tr><th>rule</th><th>result</th><th>value</th><th>page</th><th>why</th></tr>
</thead><tbody>
{rows}
</tbody></table></body></html>
"""


async def run(document: Document, params: ValidateParams, context: Context) -> dict[str, Any]:
    fields = _fields(document, params, context)
    results = report(document, params, fields)
    failed = [row["rule"] for row in results if not row["passed"]]
    passed = not failed
    context.write(
        "report.json",
        json.dumps({"passed": passed, "rules": results}, ensure_ascii=False, indent=1),
        "application/json",
    )
    context.write("report.csv", report_csv(results), "text/csv")
    context.write("report.html", report_html(document, passed, results), "text/html")
    # Why each failed, in words, for where people look (the job's verdict, its e-mail).
    reasons = {row["rule"]: _said(row) for row in results if not row["passed"]}
    return {
        "passed": passed,
        "rules": len(results),
        "failed": failed[:MAX_LISTED],
        "reasons": dict(list(reasons.items())[:MAX_LISTED]),
    }


def _said(row: dict[str, Any]) -> str:
    """A failed rule in words: `amount: 75000 is more than 50000`."""
    return f"{row['field'] or 'the text'}: {row['reason']}"[:MAX_REASON]


handler = Handler(
    name="validate",
    run=run,
    params=ValidateParams,
    description="rules over fields and text: report.json, report.csv, report.html",
)
