"""Run subscription billing now, as the beat jobs do: renewals, dunning, usage alerts."""

from django.core.management.base import BaseCommand

from billing.services.dunning import subscriptions_dun
from billing.services.renewals import subscriptions_renew_due
from billing.services.usage_alerts import usage_alerts_check


class Command(BaseCommand):
    help = (
        "Issue and collect the renewal invoice of every subscription whose period ended, retry failed "
        "charges that are due, mark overdue subscriptions past due, suspend licenses past the grace "
        "period, and raise usage alerts. Safe to run while beat runs the same jobs."
    )

    def handle(self, *args, **options):
        issued = subscriptions_renew_due()
        dunning = subscriptions_dun()
        alerts = usage_alerts_check()
        self.stdout.write(
            f"{issued} renewal invoice(s) issued; {dunning['retried']} charge(s) retried, "
            f"{dunning['past_due']} subscription(s) past due, {dunning['suspended']} license(s) suspended; "
            f"{alerts} usage alert(s).\n"
        )
