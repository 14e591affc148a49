"""What `ocrflow ocr` was asked: the documents to read and where each one's outputs go.

Everything here is decided before any page is read, so a mistake in the command line costs
nothing and leaves nothing behind."""

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ocrflow.pipeline import pages
from ocrflow.pipeline.options import Output

# A directory given as IN is walked for these; a file named on the command line is read
# whatever its name (its first bytes say what it is).
READABLE = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"})
EXTENSIONS: dict[Output, str] = {
    "text": ".txt",
    "json": ".json",
    "hocr": ".hocr",
    "csv": ".csv",
    "pdf": ".pdf",
}
STDOUT = "-"


class UsageError(Exception):
    """The command line cannot be carried out as given (exit 2)."""


@dataclass(frozen=True)
class Target:
    """One document to read, and the file each of its outputs goes to (STDOUT: the text on
    standard output)."""

    source: Path
    name: str  # as the summary shows it
    files: dict[Output, Path | str]


def split_paths(paths: Sequence[str], out: str | None) -> tuple[list[str], str | None]:
    """The INs and OUT of `ocrflow ocr IN [IN ...] [OUT]`: given several paths and no -o,
    the last is OUT."""
    if out is not None or len(paths) == 1:
        return list(paths), out
    return list(paths[:-1]), paths[-1]


def find_documents(inputs: Sequence[str]) -> list[tuple[Path, Path]]:
    """Each document with the name its outputs take (a directory's documents keep their
    place under it), in the order given, a directory's sorted."""
    found: list[tuple[Path, Path]] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            inside = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in READABLE
            )
            if not inside:
                raise UsageError(f"{given}: no PDF, PNG, JPEG or TIFF files in this directory")
            found += [(p, p.relative_to(path)) for p in inside]
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif path.exists():
            raise UsageError(f"{given}: not a file or a directory")
        else:
            raise UsageError(f"{given}: no such file or directory")
    return found


def plan_targets(
    inputs: Sequence[str],
    out: str | None,
    outputs: Sequence[Output] | None,
    sidecar: str | None,
    *,
    force: bool,
) -> list[Target]:
    """Where every output of every document goes; refuses, before anything is read, what
    cannot be done or would overwrite what it should not."""
    documents = find_documents(inputs)
    single = len(documents) == 1
    if sidecar is not None and not single:
        raise UsageError("--sidecar takes the text of one document; give one IN")
    if out is None:
        first = Path(inputs[0])
        out = str(first.parent / f"{first.stem if first.is_file() else first.name}-ocrflow")
    if out == STDOUT or (out.lower().endswith(".pdf") and not Path(out).is_dir()):
        if not single:
            raise UsageError(
                f"{out} takes the results of one document, not {len(documents)}: "
                "give a directory as OUT"
            )
        kind: Output = "text" if out == STDOUT else "pdf"
        if outputs is not None and list(outputs) != [kind]:
            raise UsageError(
                f"OUT {out} is the {'text' if out == STDOUT else 'searchable PDF'} alone: "
                "give a directory as OUT for other outputs"
            )
        source = documents[0][0]
        files: dict[Output, Path | str] = {kind: out if out == STDOUT else Path(out)}
        targets = [Target(source, str(source), files)]
    else:
        targets = _into_directory(documents, Path(out), outputs or list(EXTENSIONS))
    if sidecar is not None:
        files = targets[0].files
        if "text" in files:
            raise UsageError("--sidecar: the text is already among the outputs")
        files["text"] = sidecar if sidecar == STDOUT else Path(sidecar)
    # Files named on the command line are replaced only when asked; those in an OUT directory
    # are its own, rewritten by a rerun.
    named = [Path(p) for p in (out, sidecar) if p is not None and p != STDOUT]
    if not force:
        for path in named:
            if path.exists() and not path.is_dir():
                raise UsageError(f"{path}: exists; give --force to replace it")
    _check_overwrites(targets, documents)
    return targets


def _into_directory(
    documents: list[tuple[Path, Path]], out: Path, outputs: Sequence[Output]
) -> list[Target]:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory")
    # scan.pdf and scan.png side by side would both make scan.txt: such names keep their
    # suffix (scan.pdf.txt, scan.png.txt).
    stems = Counter(relative.with_suffix("") for _, relative in documents)
    targets = []
    for source, relative in documents:
        base = relative.with_suffix("") if stems[relative.with_suffix("")] == 1 else relative
        files: dict[Output, Path | str] = {
            name: out / base.parent / (base.name + EXTENSIONS[name]) for name in outputs
        }
        targets.append(Target(source, str(source), files))
    return targets


def _check_overwrites(targets: list[Target], documents: list[tuple[Path, Path]]) -> None:
    sources = {os.path.realpath(source) for source, _ in documents}
    seen: set[str] = set()
    for target in targets:
        for path in target.files.values():
            if path == STDOUT:
                continue
            real = os.path.realpath(path)
            if real in sources:
                raise UsageError(f"{path}: is an input; its outputs would replace it")
            if real in seen:
                raise UsageError(f"{path}: two outputs would be written to it")
            seen.add(real)
            if Path(path).is_dir():
                raise UsageError(f"{path}: is a directory")


def parse_pages(text: str, last: int) -> frozenset[int]:
    """`1-3,7,10-` as page numbers; an open range runs to `last` (the most pages a document
    may have)."""
    try:
        spans = pages.parse_pages(text)
    except ValueError as exc:
        raise UsageError(f"--pages {text}: {exc}") from None
    numbers: set[int] = set()
    for start, stop in spans:
        numbers.update(range(start, min(last if stop is None else stop, last) + 1))
    return frozenset(numbers)
