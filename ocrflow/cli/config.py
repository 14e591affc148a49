"""Settings for a command, with every refused value said in one line each."""

import sys
from typing import Any

from pydantic import ValidationError

from ocrflow.settings import Settings


def load_settings(command: str, **overrides: Any) -> Settings | None:
    """The settings from the environment, .env and `overrides` (options given on the command
    line); None, with each refused value printed, when they do not hold."""
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as exc:
        for error in exc.errors():
            field = "_".join(str(part) for part in error["loc"])
            # Fields read under an alias (OCRFLOW_PORT, PORT, REDIS_URL) report the alias.
            name = field if field.isupper() else "OCRFLOW_" + field.upper()
            print(f"ocrflow {command}: {name}: {error['msg']}", file=sys.stderr)
        return None
