"""localstripe for `make run`, with its state in the stack's own file.

localstripe keeps every object it holds in one pickle, always
/tmp/localstripe.pickle: shared by every localstripe on the machine, and
ignored with `--from-scratch`. The stack's databases keep Stripe ids across a
restart, so `make run` needs its own Stripe state to survive one too, and no
other stack's: this points localstripe's store at a file of our choosing
(`localstripe.pickle` in VAR_DIR), written whole or not at all, then starts
localstripe's own server.

    python -m devtools.devstripe [--port 8420] [--state var/localstripe.pickle]
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

from services.common.config import port_for, var_dir

STATE_FILE = "localstripe.pickle"


def keep_state_in(path: Path) -> None:
    """Make localstripe's store load from and save to `path` (localstripe 1.15 has no option for it)."""
    from localstripe import resources  # builds localstripe's app: only in the process that serves it

    store = resources.store

    def load() -> None:
        try:
            with path.open("rb") as f:
                saved = pickle.load(f)
        except FileNotFoundError:
            return
        except Exception as exc:  # an old localstripe's pickle, or a damaged file
            aside = path.with_name(path.name + ".unreadable")
            path.replace(aside)
            print(f"localstripe: could not read {path} ({type(exc).__name__}); starting empty, "
                  f"the file is kept as {aside}", file=sys.stderr, flush=True)
            return
        store.clear()
        store.update(saved)

    def save() -> None:
        # Write aside, then rename: a stop mid-write leaves the previous state, not half a file.
        partial = path.with_name(path.name + ".tmp")
        with partial.open("wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)

    store.try_load_from_disk = load
    store.dump_to_disk = save


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, help="default LOCALSTRIPE_PORT, else 8420 (+ PORT_OFFSET)")
    parser.add_argument("--state", type=Path, help=f"default {STATE_FILE} in VAR_DIR (var/)")
    args = parser.parse_args(argv)
    from localstripe import server

    state = args.state or var_dir() / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    keep_state_in(state)
    # localstripe's start() reads its own arguments; without --from-scratch it loads the store.
    sys.argv = ["localstripe", "--port", str(args.port or port_for("localstripe"))]
    server.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
