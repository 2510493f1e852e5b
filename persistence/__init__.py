"""The database kit every service and the experiments store use: the engine
(pool, PostgreSQL's settings), the unit of work, portable column types and
inserts that ignore duplicates (db.py), and statement timing (timing.py).
It imports nothing of this repository."""
