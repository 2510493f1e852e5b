"""How events travel between the services once a transaction has written them
to its outbox (services/common/outbox.py): the relay that delivers them
(relay.py), the inbox that takes each one once (inbox.py), the one table of
who hears what (routing.py), and the worker loop that runs relays and sweeps
(jobs.py). It builds on the service kit (services/common) and imports no
service; the kit does not import it."""
