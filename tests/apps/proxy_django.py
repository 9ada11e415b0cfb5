"""A Django app for tests/test_proxy_headers.py: what Django concludes from
the scope a proxy-header-aware server builds (is_secure(), the absolute
URIs it would redirect to, REMOTE_ADDR).  Settings in code, no database;
any Host is allowed, since the tests send names such as example.com."""

import django
from django.conf import settings
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="integration-tests-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - needs settings
from django.http import JsonResponse  # noqa: E402


async def whoami(request):
    return JsonResponse(
        {
            "secure": request.is_secure(),
            "uri": request.build_absolute_uri("/next"),
            "host": request.get_host(),
            "remote_addr": request.META.get("REMOTE_ADDR"),
        }
    )


urlpatterns = [path("whoami", whoami)]

app = get_asgi_application()
