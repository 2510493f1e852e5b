from services.trials.app import create_app
from services.common.serve import serve

serve("trials", create_app)
