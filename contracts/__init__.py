"""The services' published language: the typed payload of every event topic, one
definition that producer and consumer share (events.py). Plain Python: it
imports nothing of this repository, so any service or app can depend on it."""
