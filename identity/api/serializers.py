from rest_framework import serializers

from identity.models import Organization, User


class OrganizationSerializer(serializers.ModelSerializer):
    settings = serializers.DictField(required=False, help_text="currency, country, hourly_rate, timezone, ...")

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "email", "settings", "max_users", "created_at"]
        read_only_fields = ["id", "slug", "email", "max_users", "created_at"]


class MeSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer(read_only=True)

    class Meta:
        model = User
        fields = [
            "id", "email", "first_name", "last_name", "role", "scopes", "preferences",
            "is_staff", "organization", "last_login", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "email", "role", "scopes", "is_staff", "organization", "last_login", "created_at"]


class MemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "role", "is_active", "last_login", "created_at"]
        read_only_fields = ["id", "email", "first_name", "last_name", "last_login", "created_at"]


class MemberCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=User.Role.choices, default=User.Role.MEMBER)
    first_name = serializers.CharField(max_length=150, required=False, default="")
    last_name = serializers.CharField(max_length=150, required=False, default="")


class MemberInvitationSerializer(serializers.Serializer):
    """The answer to an invitation: the same for every address that is not yet a member."""

    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=User.Role.choices)
    status = serializers.CharField(default="invited", help_text="Always 'invited': the account is made on acceptance.")
    expires_at = serializers.DateTimeField()


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=2000)
    password = serializers.CharField(max_length=128, required=False, allow_blank=True, write_only=True)
