from django.urls import path
from rest_framework.routers import DefaultRouter

from clips.api.views import ClipViewSet
from clips.streaming.views import clip_stream

router = DefaultRouter(trailing_slash=False)
router.register("clips", ClipViewSet, basename="clip")

urlpatterns = [
    path("clips/<int:pk>/stream", clip_stream, name="clip-stream"),
    *router.urls,
]
