"""`python -m deploy.probe URL [TIMEOUT]`: exit 0 when URL answers 2xx within TIMEOUT
seconds (default 3), 1 otherwise. The liveness probes and compose's healthchecks
use it: the image has no curl, and podman kube play runs an exec probe as one
shell line joined with spaces, so a probe's arguments must hold no spaces or
quotes (a `python -c "..."` one-liner would not survive it).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url, timeout = argv[0], float(argv[1]) if len(argv) > 1 else 3.0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (a probe of our own URL)
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"probe: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
