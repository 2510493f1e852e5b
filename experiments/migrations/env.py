from experiments.store import metadata
from services.common.migrate import run_env

run_env(metadata)
