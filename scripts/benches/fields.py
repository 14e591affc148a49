"""How well the built-in `fields` handler reads generated forms, scanned as users send them.

Makes forms of labelled values (names, dates, amounts, account codes, e-mail addresses, places;
some values beside their label, some below it; and forms laid out as most are, labels in one
column and values in a second 0.3 to 2 inches right of it), in several fonts and sizes, scanned
as 1-bit
CCITT pages at 300 dpi or colour JPEG at 150 dpi, upright or turned (90, 180, 270), some skewed,
some noisy. Reads them all with one `ocrflow ocr DIR OUT --outputs json`, then finds each
field from its label with the `fields` handler's own code, and compares with what was drawn.

Prints, for each kind of scan: fields, values read exactly, values found on the right page
whose box lies on the drawn value, and values not found at all; and the whole set. Run it
through `scripts/bench fields`."""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from ocrflow.handlers.fields import FieldSpec, find
from ocrflow.pipeline.result import PageResult
from tests.fixtures.corpus import (
    FormEntry,
    Style,
    available_fonts,
    column_form_page,
    form_page,
    write_scan_pdf,
)

OCR = [sys.executable, "-m", "ocrflow", "ocr", "-q", "--outputs", "json"]
FIRST = ["Maria", "John", "Aiko", "Pierre", "Olga", "Kwame", "Lucia", "Henrik", "Sara", "Tomas"]
LAST = ["Lopez", "Smith", "Tanaka", "Dubois", "Ivanova", "Mensah", "Rossi", "Larsen", "Cohen"]
CITIES = ["Lisbon", "Chicago", "Osaka", "Lyon", "Accra", "Bergen", "Turin", "Haifa", "Austin"]


def value_of(kind: str, rng: random.Random) -> str:
    if kind == "name":
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if kind == "date":
        return f"{rng.randint(1940, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "amount":
        return f"{rng.randint(1, 99)},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d}"
    if kind == "code":
        return f"ACC-{rng.randint(10000, 99999)}"
    if kind == "email":
        return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@example.org"
    return rng.choice(CITIES)


LABELS = [
    ("Invoice No", "code"),
    ("Customer ID", "code"),
    ("Due date", "date"),
    ("Applicant", "name"),
    ("Date of birth", "date"),
    ("Amount requested", "amount"),
    ("Account number", "code"),
    ("E-mail", "email"),
    ("City", "city"),
    ("Signed on", "date"),
    ("Contact person", "name"),
]


@dataclass(frozen=True)
class Form:
    name: str
    kind: str  # how it was scanned, for the table
    entries: tuple[FormEntry, ...]
    truth: dict[str, tuple[int, int, int, int]]  # on the upright page as drawn
    size: tuple[int, int]  # that page's width and height

    def box(self, label: str, page: PageResult) -> tuple[int, int, int, int]:
        """Where the value is on the page as read: scaled to the dpi it was read at (the forms
        are drawn at 300), centred as turning and levelling (which grow the page) leave it."""
        scale = page.dpi / 300
        dx = (page.width - self.size[0] * scale) / 2
        dy = (page.height - self.size[1] * scale) / 2
        left, top, right, bottom = self.truth[label]
        return (
            round(left * scale + dx),
            round(top * scale + dy),
            round(right * scale + dx),
            round(bottom * scale + dy),
        )


def make_forms(directory: Path, count: int, seed: int) -> list[Form]:
    rng = random.Random(seed)
    fonts = available_fonts()
    kinds = [
        ("ccitt upright", 0, 0.0, False),
        ("ccitt turned 90", 90, 0.0, False),
        ("ccitt turned 180", 180, 0.0, False),
        ("ccitt skewed 1.5", 0, 1.5, False),
        ("ccitt noisy", 0, 0.0, True),
        ("jpeg 150 dpi", 0, 0.0, False),
        ("jpeg turned 270, noisy", 270, 0.0, True),
    ]
    forms = []
    for n in range(count):
        label, rotation, skew, noise = kinds[n % len(kinds)]
        style = Style(
            font=fonts[n % len(fonts)] if fonts else "",
            font_size=rng.choice((32, 36, 40, 44)),
            rotation=rotation,
            skew=skew,
            noise=noise,
        )
        chosen = rng.sample(LABELS, 6)
        columns = n % 2 == 1  # every other form: values in a column of their own
        entries = tuple(
            FormEntry(text, value_of(kind, rng), below=not columns and rng.random() < 0.3)
            for text, kind in chosen
        )
        gap = rng.choice((90, 200, 350, 600))  # 0.3 to 2 inches at 300 dpi
        if columns:
            label = f"{label}, values in a column"
            page = column_form_page(entries, style, gap=gap, seed=n)
            upright = column_form_page(
                entries, replace(style, rotation=0, skew=0.0), gap=gap, seed=n
            )
        else:
            page = form_page(entries, style, seed=n)
            upright = form_page(entries, replace(style, rotation=0, skew=0.0), seed=n)
        name = f"form-{n:03d}"
        scan = "jpeg" if label.startswith("jpeg") else "ccitt"
        write_scan_pdf(directory / f"{name}.pdf", [(page.image, scan)])
        forms.append(Form(name, label, entries, upright.values, upright.image.size))
    return forms


def overlaps(found: tuple[int, int, int, int], drawn: tuple[int, int, int, int]) -> bool:
    """The found box lies on the drawn value: most of it inside, covering most of it."""
    width = min(found[2], drawn[2]) - max(found[0], drawn[0])
    height = min(found[3], drawn[3]) - max(found[1], drawn[1])
    if width <= 0 or height <= 0:
        return False
    common = width * height
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return common >= 0.5 * area(found) and common >= 0.5 * area(drawn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=56, help="forms to make (default: 56)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrflow-fields-") as scratch:
        root = Path(scratch)
        (root / "in").mkdir()
        forms = make_forms(root / "in", args.forms, args.seed)
        started = time.perf_counter()
        subprocess.run(
            [*OCR, str(root / "in"), str(root / "out")],
            check=True,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )
        read = time.perf_counter() - started
        rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        misses = []
        started = time.perf_counter()
        for form in forms:
            result = json.loads((root / "out" / f"{form.name}.json").read_text())
            pages = [PageResult.from_json(page) for page in result["pages"]]
            for entry in form.entries:
                spec = FieldSpec(
                    name="x", label=entry.label, position="below" if entry.below else "auto"
                )
                found = find(pages, spec, 0.8)
                row = rows[form.kind]
                row[0] += 1
                if found is None:
                    row[3] += 1
                    misses.append(f"{form.name} ({form.kind}): {entry.label}: not found")
                    continue
                if found.value == entry.value:
                    row[1] += 1
                else:
                    misses.append(
                        f"{form.name} ({form.kind}): {entry.label}: "
                        f"{found.value!r} for {entry.value!r}"
                    )
                page = pages[found.page - 1]
                if overlaps(found.box, form.box(entry.label, page)):
                    row[2] += 1
        found_seconds = time.perf_counter() - started
    print(f"{len(forms)} forms, {sum(r[0] for r in rows.values())} fields")
    print("| scan | fields | value exact | box on the value | not found |")
    print("|---|---|---|---|---|")
    total = [0, 0, 0, 0]
    for kind, row in rows.items():
        total = [a + b for a, b in zip(total, row, strict=True)]
        print(f"| {kind} | {row[0]} | {row[1]} | {row[2]} | {row[3]} |")
    print(
        f"| all | {total[0]} | {total[1]} ({total[1] / total[0]:.1%}) | "
        f"{total[2]} ({total[2] / total[0]:.1%}) | {total[3]} |"
    )
    print(f"recognition {read:.1f} s; finding the fields {found_seconds * 1000:.0f} ms in all")
    if misses:
        print("misses:")
        for miss in misses:
            print("  " + miss)


if __name__ == "__main__":
    main()
