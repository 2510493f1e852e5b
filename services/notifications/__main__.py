from services.notifications.app import create_app
from services.common.serve import serve

serve("notifications", create_app)
