"""``{% staff_dashboard %}``: the dashboard panel on the admin index (staff only)."""

from django import template

from backoffice.dashboard import dashboard_data
from celaest.jobs import periodic_job_status

register = template.Library()


@register.inclusion_tag("admin/backoffice/dashboard.html", takes_context=True)
def staff_dashboard(context):
    request = context.get("request")
    if request is None or not request.user.is_staff:
        return {"visible": False}
    data = dashboard_data()
    return {"visible": True, "kpis": data["kpis"], "charts": data["charts"], "jobs": periodic_job_status()}
