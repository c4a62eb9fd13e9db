"""Write the job API's OpenAPI document to ``openapi.json`` at the repository root.

The document a server serves at ``/myspinbot/openapi.json`` is generated from the routes it
registers (``server/contract/``, ``server/registry.py``); this file is the same document for the
full production route set and the built-in pipelines, committed so that a change of the contract
shows up in review. A tier-1 test fails when the file is out of date::

    python scripts/export_openapi.py          # rewrite openapi.json
    python scripts/export_openapi.py --check  # exit 1 when it is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "openapi.json"


def document_text() -> str:
    """The document as committed: sorted keys, two-space indent, a final newline."""
    sys.path.insert(0, str(REPO / "custom_nodes"))
    from myspinbot.server.contract.endpoints import ENDPOINTS
    from myspinbot.server.openapi import build_openapi
    from myspinbot.server.pipelines import builtin_pipelines

    return json.dumps(build_openapi(ENDPOINTS, builtin_pipelines()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = document_text()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.name} is out of date: run python scripts/export_openapi.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
