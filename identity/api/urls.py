"""REST routes of the identity app under /api/v1/."""

from django.urls import re_path

from celaest.api.routers import ApiRouter

from .views import InvitationAcceptView, MemberViewSet, MeView, OrganizationView

router = ApiRouter()
router.register("members", MemberViewSet, basename="member")

urlpatterns = [
    re_path(r"^me/?$", MeView.as_view(), name="me"),
    re_path(r"^organization/?$", OrganizationView.as_view(), name="organization"),
    re_path(r"^invitations/accept/?$", InvitationAcceptView.as_view(), name="invitation-accept"),
    *router.urls,
]
