"""`python -m scripts.benches NAME [options]`: run one benchmark (what `scripts/bench` calls)."""

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> dict[str, str]:
    """Each runnable module, by name, with the first line of what it says of itself."""
    found = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not info.name.startswith("_"):
            doc = importlib.import_module(f"scripts.benches.{info.name}").__doc__ or ""
            found[info.name] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def main() -> int:
    names = available()
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help") or sys.argv[1] not in names:
        print("usage: scripts/bench NAME [options]   (scripts/bench NAME --help for its options)")
        for name, line in sorted(names.items()):
            print(f"  {name:<15} {line}")
        return 0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2
    name = sys.argv[1]
    sys.argv = [f"scripts/bench {name}", *sys.argv[2:]]
    importlib.import_module(f"scripts.benches.{name}").main()
    return 0


sys.exit(main())
