"""`python -m experiments.collector [--interval S] [--once]`: copy every
service's funnel events into the experiments' event store, every 5 s
(`python -m experiments collect` is one catch-up pass, for a shell).
Several at once are safe: duplicate event ids are ignored.
"""

from __future__ import annotations

import sys

from experiments import store
from messaging import jobs
from persistence.db import make_engine

# Funnel events reach the experiments' event store within this long.
COLLECT_SECONDS = 5.0


def build() -> jobs.Jobs:
    engine = make_engine(store.store_url_from_env())
    sources = {name: make_engine(url) for name, url in store.source_urls_from_env().items()}

    def collect() -> str:
        copied = store.collect_once(engine, sources)
        return f"experiments: collected {copied} funnel events" if copied else ""

    return ([jobs.Guarded("experiments collector", jobs.every(COLLECT_SECONDS, collect))],
            [engine.dispose, *(source.dispose for source in sources.values())])


if __name__ == "__main__":
    raise SystemExit(jobs.main(__doc__ or "", build, sys.argv[1:]))
