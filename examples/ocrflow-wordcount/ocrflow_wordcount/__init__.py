"""An example ocrflow handler: how many words each page holds, and the most frequent ones.

Install it beside ocrflow (`pip install ./examples/ocrflow-wordcount`), allow it
(`OCRFLOW_HANDLERS=fields,validate,wordcount`), and name it in a job:
`-F 'handlers={"wordcount": {"top": 5}}'`.
"""

import csv
import io
import re
from collections import Counter
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ocrflow.handlers import Context, Document, Handler

WORD = re.compile(r"[^\W\d_]{2,}")


class Params(BaseModel):
    """Checked when the job is submitted: a bad value is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")

    top: Annotated[int, Field(ge=1, le=100)] = 10  # how many frequent words to report
    min_confidence: Annotated[float, Field(ge=0, le=100)] = 0  # words read less surely are skipped


def count(document: Document, params: Params) -> tuple[list[tuple[int, int]], Counter[str]]:
    per_page, frequent = [], Counter[str]()
    for page in document.pages:
        words = [
            word.text
            for line in page.lines
            for word in line.words
            if word.confidence >= params.min_confidence
        ]
        per_page.append((page.number, len(words)))
        frequent.update(match.casefold() for text in words for match in WORD.findall(text))
    return per_page, frequent


async def run(document: Document, params: Params, context: Context) -> dict[str, Any]:
    await context.progress(f"counting the words of {len(document.pages)} pages")
    per_page, frequent = await context.run(count, document, params)  # off the event loop
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["page", "words"])
    writer.writerows(per_page)
    context.write("wordcount.csv", table.getvalue(), "text/csv")
    await context.progress("counted", fraction=1.0)
    return {
        "words": sum(n for _, n in per_page),
        "top": [word for word, _ in frequent.most_common(params.top)],
    }


handler = Handler(
    name="wordcount",
    run=run,
    params=Params,
    description="words per page (wordcount.csv) and the most frequent words",
)
