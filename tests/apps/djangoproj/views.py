import hashlib

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse("Hello from Django", content_type="text/plain")


@csrf_exempt
def echo(request):
    return JsonResponse({"method": request.method, "body": request.body.decode(), "query": request.GET.dict()})


@csrf_exempt
def upload(request):
    uploaded = request.FILES["document"]
    return JsonResponse({"name": uploaded.name, "sha256": hashlib.sha256(uploaded.read()).hexdigest()})


def stream(request):
    return StreamingHttpResponse((f"part {number}\n" for number in range(3)), content_type="text/plain")


def cookie(request):
    response = HttpResponse(request.COOKIES.get("session", "none"), content_type="text/plain")
    response.set_cookie("session", "abc123")
    return response


def meta(request):
    return JsonResponse({
        "path": request.path,
        "path_info": request.path_info,
        "script_name": request.META["SCRIPT_NAME"],
        "host": request.get_host(),
        "absolute": request.build_absolute_uri(),
    })
