"""WSGI entry point: `flask --app app run` and `gunicorn app:app`."""
from portal import create_app

app = create_app()
