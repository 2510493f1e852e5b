from services.common.serve import serve
from services.trials.app import create_app

serve("trials", create_app)
