"""Root routes of the OpenAI-compatible gateway (``/v1/...``)."""

from django.urls import re_path

from .gateway import ChatCompletionsView, ModelsView

urlpatterns = [
    re_path(r"^v1/chat/completions/?$", ChatCompletionsView.as_view(), name="gateway-chat-completions"),
    re_path(r"^v1/models/?$", ModelsView.as_view(), name="gateway-models"),
]
