from services.checkout.app import create_app
from services.common.serve import serve

serve("checkout", create_app)
