"""Feature flags: a GrowthBook SDK payload evaluated locally, the exposures it
makes and the cache of who is in which variation.

A small library every service loads. It imports no service and nothing of the
experiments app (tests/test_import_contracts.py holds it to that): the services
and the app import it, never the reverse. Where exposures are stored is the
caller's business, behind `flags.exposures.ExposureStore`.

- `flags.payload`: the hash attributes, and checking and compiling a payload
  (the one validator: the services and the dashboard both use it);
- `flags.client`: `Flags`, one process's current payload, its background
  refresh and evaluation;
- `flags.exposures`: what an exposure is, the store port and `KnownVariations`.
"""
