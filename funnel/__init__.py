"""Funnel telemetry, the source the experiment analysis counts from: the steps
and traffic sources, the append-only funnel row and how it is written
(telemetry.py), view-only rows written in batches (batch.py), the stored
experiment exposures (exposures.py), the PostHog forwarder and their counters
(metrics.py). It builds on persistence/ and flags/, and imports no service."""
