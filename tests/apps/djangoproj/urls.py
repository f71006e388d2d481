from django.urls import path

from . import views

urlpatterns = [
    path("hello/", views.hello),
    path("echo/", views.echo),
    path("upload/", views.upload),
    path("stream/", views.stream),
    path("cookie/", views.cookie),
    path("meta/", views.meta),
]
