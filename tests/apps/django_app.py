"""A Django ASGI app serving the same URLs as starlette_app (see
test_frameworks.py).  Settings are configured in code; no database.

Django has no lifespan support (its handler raises for a lifespan scope),
which also makes it the real-world case of --lifespan auto falling back.
"""

import asyncio
import hashlib
import json

import django
from django.conf import settings
from django.urls import path

from tests.apps._support import record

settings.configure(
    DEBUG=False,
    SECRET_KEY="integration-tests-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - needs settings
from django.http import HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse  # noqa: E402


async def json_view(request):
    if request.method == "GET":
        return JsonResponse({"hello": "world", "framework": "django"})
    if request.method == "POST":
        data = json.loads(request.body)
        return JsonResponse({"received": data, "keys": sorted(data)})
    return HttpResponseNotAllowed(["GET", "POST"])


async def item(request, item_id):
    return JsonResponse({"item_id": item_id, "q": request.GET.get("q")})


async def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse(
        {
            "name": request.POST["name"],
            "filename": f.name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    )


async def stream(request):
    async def lines():
        for i in range(10):
            yield f"line {i}\n"
            await asyncio.sleep(0.01)

    return StreamingHttpResponse(lines(), content_type="text/plain")


async def wait_disconnect(request):
    # Django (5.0+) cancels the view when the server reports http.disconnect.
    token = request.GET["token"]
    record(token, "started")
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        record(token, "disconnected")
        raise
    record(token, "timeout")
    return JsonResponse({})


urlpatterns = [
    path("json", json_view),
    path("items/<int:item_id>", item),
    path("upload", upload),
    path("stream", stream),
    path("wait-disconnect", wait_disconnect),
]

app = get_asgi_application()
