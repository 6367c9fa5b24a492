"""Root routes of the gateway (``/v1/...``): OpenAI's chat completions and models, Anthropic's messages."""

from django.urls import re_path

from .gateway import ChatCompletionsView, EmbeddingsView, ModelsView
from .messages import MessagesView
from .responses import ResponsesView

urlpatterns = [
    re_path(r"^v1/chat/completions/?$", ChatCompletionsView.as_view(), name="gateway-chat-completions"),
    re_path(r"^v1/models/?$", ModelsView.as_view(), name="gateway-models"),
    re_path(r"^v1/embeddings/?$", EmbeddingsView.as_view(), name="gateway-embeddings"),
    re_path(r"^v1/messages/?$", MessagesView.as_view(), name="gateway-messages"),
    re_path(r"^v1/responses/?$", ResponsesView.as_view(), name="gateway-responses"),
]
