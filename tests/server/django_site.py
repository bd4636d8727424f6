"""A one-file Django 5.2 site served as ASGI, for the logging tests: Django configures its
own logging (a console handler on the ``django`` logger when DEBUG is on)."""

from __future__ import annotations

from django.conf import settings

settings.configure(
    DEBUG=True, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="onehop-tests",
    MIDDLEWARE=[], INSTALLED_APPS=[], DATABASES={},
)

from django.core.asgi import get_asgi_application  # noqa: E402  (after settings)
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello from django")


urlpatterns = [path("hello", hello)]
application = get_asgi_application()
