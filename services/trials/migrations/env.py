from services.common.migrate import run_env
from services.trials.adapters.models import Base

run_env(Base.metadata)
