from django.urls import path
from rest_framework.routers import DefaultRouter

from clips import streaming, views

router = DefaultRouter(trailing_slash=False)
router.register("clips", views.ClipViewSet, basename="clip")

urlpatterns = [
    path("clips/<int:pk>/stream", streaming.clip_stream, name="clip-stream"),
    *router.urls,
]
