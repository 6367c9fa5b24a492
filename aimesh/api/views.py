"""AI mesh endpoints: the model and prompt catalogues (customers read, staff write) and the
provider key pool (staff only; the secrets never leave the server)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from aimesh.filters import AIApiKeyFilterSet, AIModelFilterSet, PromptFilterSet
from aimesh.models import AIApiKey, AIModel, Prompt
from aimesh.services import prompt_activate, prompt_new_version
from celaest.api.schema import crud_schema
from celaest.api.viewsets import CatalogViewSet, CrudMixin, DatabaseConflictsMixin, StaffViewSet, conflicts_answered_409

from .serializers import AIApiKeySerializer, AIModelSerializer, PromptSerializer


@extend_schema_view(
    **crud_schema(
        "an AI model", "AI models", create="Add an AI model (staff)", destroy="Delete an unused AI model (staff)"
    )
)
class AIModelViewSet(DatabaseConflictsMixin, CatalogViewSet, CrudMixin):
    """Customers see the active models; staff see and manage all of them."""

    serializer_class = AIModelSerializer
    scope_resource = "ai-models"
    filterset_class = AIModelFilterSet
    search_fields = ["model_id", "display_name"]
    ordering_fields = ["provider", "model_id", "display_name", "cost_per_1k_input", "cost_per_1k_output"]
    ordering = ["provider", "model_id"]
    in_use_message = "Tasks ran on this model; deactivate it instead of deleting it."

    def scoped_queryset(self):
        return AIModel.objects.all()

    def visible_to_customers(self, queryset):
        return queryset.filter(is_active=True)


@extend_schema_view(
    **crud_schema(
        "a prompt version",
        "prompts",
        create="Add a prompt version (staff)",
        destroy="Delete an unused prompt version (staff)",
    )
)
class PromptViewSet(DatabaseConflictsMixin, CatalogViewSet, CrudMixin):
    """Customers see the active version of each prompt; staff see every version."""

    serializer_class = PromptSerializer
    scope_resource = "prompts"
    filterset_class = PromptFilterSet
    search_fields = ["slug", "name", "description"]
    ordering_fields = ["slug", "name", "category", "version", "created_at"]
    ordering = ["slug", "-version"]
    in_use_message = "Batches use this prompt version; deactivate it instead of deleting it."

    def scoped_queryset(self):
        return Prompt.objects.all()

    def visible_to_customers(self, queryset):
        return queryset.filter(is_active=True)

    def perform_create(self, serializer):
        with conflicts_answered_409():
            serializer.save(created_by=self.request.user)

    @extend_schema(
        summary="Create the next version of a prompt, copied from this one (staff)",
        request=None,
        responses={201: PromptSerializer},
    )
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request, pk=None):
        with conflicts_answered_409():
            created = prompt_new_version(prompt=self.get_object(), user=request.user)
        return Response(PromptSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Make this the active version of its prompt (staff)", request=None, responses=PromptSerializer
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        prompt = prompt_activate(prompt=self.get_object(), user=request.user)
        return Response(PromptSerializer(prompt).data)


@extend_schema_view(
    **crud_schema(
        "a pooled provider key",
        "pooled provider keys",
        staff_reads=True,
        create="Add a provider key to the pool (staff)",
        destroy="Remove a provider key from the pool (staff)",
    )
)
class AIApiKeyViewSet(DatabaseConflictsMixin, StaffViewSet, CrudMixin):
    serializer_class = AIApiKeySerializer
    scope_resource = "ai-keys"
    filterset_class = AIApiKeyFilterSet
    search_fields = ["key_name", "key_hint"]
    ordering_fields = ["provider", "priority", "key_name", "usage_count", "last_used_at"]
    ordering = ["provider", "priority"]

    def scoped_queryset(self):
        return AIApiKey.objects.all()
