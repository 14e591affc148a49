"""Every parameter of a handler as Markdown, from its own parameter model: the reference in
docs/handlers.md is this text, so it cannot drift from what a handler accepts.

`python -m ocrflow.handlers.reference docs/handlers.md` rewrites that file's reference."""

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ocrflow.handlers.api import Handler

BEGIN = "<!-- parameters: made by `python -m ocrflow.handlers.reference`; do not edit -->"
END = "<!-- parameters: end -->"
BUILT_IN = ("fields", "validate")


def markdown(handlers: list[Handler[Any]]) -> str:
    """Each handler's parameters, one table per model (nested models after their parent)."""
    out: list[str] = []
    seen: dict[type[BaseModel], str] = {}  # a model already described, by where
    for handler in handlers:
        out.append(f"### `{handler.name}`\n\n{handler.description}\n")
        out.extend(_tables(handler.params, handler.name, seen))
    return "\n".join(out)


def _tables(model: type[BaseModel], title: str, seen: dict[type[BaseModel], str]) -> list[str]:
    if model in seen:
        return [f"`{title}`: as `{seen[model]}` above.\n"]
    seen[model] = title
    rows, nested = [], []
    for name, info in model.model_fields.items():
        kind, inner = _type(info.annotation)
        default = (
            "required"
            if info.is_required()
            else _default(info.get_default(call_default_factory=True))
        )
        limits = _limits(info.metadata)
        text = (info.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | {kind} | {default} | {text}{limits} |")
        if inner is not None:
            nested.append((f"{title}.{name}", inner))
    table = [
        f"`{title}`:\n",
        "| parameter | type | default | meaning |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    for sub_title, sub in nested:
        table.extend(_tables(sub, sub_title, seen))
    return table


def _type(annotation: Any) -> tuple[str, type[BaseModel] | None]:
    """A readable type, and the model inside it (a list of rules, an optional spec), if any."""
    text = repr(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    model = _model_in(annotation)
    if model is not None:
        text = text.replace(f"{model.__module__}.{model.__qualname__}", model.__name__)
    text = text.replace(" | None", "").replace(" | NoneType", "")  # its default says so
    if text.startswith("Literal["):
        return " or ".join(f"`{choice}`" for choice in annotation.__args__), model
    return "`" + text.replace(" | ", "` or `") + "`", model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list) and len(value) > 4:
        return "`[" + ", ".join(f'"{item}"' for item in value[:3]) + ", …]`"
    return f"`{value!r}`".replace("'", '"')


def _limits(metadata: list[Any]) -> str:
    words = {
        "ge": "at least",
        "le": "at most",
        "gt": "above",
        "lt": "below",
        "min_length": "at least",
        "max_length": "at most",
    }
    found = []
    for item in metadata:
        for key, word in words.items():
            value = getattr(item, key, None)
            if value is not None:
                unit = " items" if "length" in key else ""
                found.append(f"{word} {value}{unit}")
    return f"; {', '.join(found)}" if found else ""


def rewrite(path: Path, handlers: list[Handler[Any]]) -> bool:
    """Put the reference between the markers in `path`; True if the file changed."""
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n\n{markdown(handlers)}\n{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


def built_in() -> list[Handler[Any]]:
    from ocrflow.handlers import registry

    return [registry.load(name) for name in BUILT_IN]


if __name__ == "__main__":
    changed = rewrite(Path(sys.argv[1]), built_in())
    print(f"{sys.argv[1]}: {'rewritten' if changed else 'up to date'}")
