"""Issue a license to an organization from the command line."""

from django.core.management.base import BaseCommand, CommandError

from celaest.errors import DomainError
from identity.models import Organization
from licensing.models import License, SubscriptionPlan
from licensing.services import license_issue


class Command(BaseCommand):
    help = "Issue a license of a plan to an organization and print its key."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--plan", required=True, help="Subscription plan code.")
        parser.add_argument("--expires-in-days", type=int, default=None, help="Days until expiry (default: never).")
        parser.add_argument("--trial", action="store_true", help="Issue a trial license instead of an active one.")

    def handle(self, *args, org, plan, expires_in_days, trial, **options):
        try:
            organization = Organization.objects.get(slug=org)
        except Organization.DoesNotExist as exc:
            raise CommandError(f"No organization with slug {org!r}.") from exc
        try:
            subscription_plan = SubscriptionPlan.objects.get(code=plan)
        except SubscriptionPlan.DoesNotExist as exc:
            raise CommandError(f"No plan with code {plan!r}.") from exc
        try:
            license = license_issue(
                organization=organization,
                plan=subscription_plan,
                status=License.Status.TRIAL if trial else License.Status.ACTIVE,
                expires_in_days=expires_in_days,
                source="command",
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        expiry = license.expires_at.isoformat() if license.expires_at else "never"
        self.stdout.write(f"{license.license_key}\n")
        self.stderr.write(f"Issued {license.status} license {license.pk} of {plan} to {org}; expires {expiry}.\n")
