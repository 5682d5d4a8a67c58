"""What the operators' console shows: the dashboard's counts of work waiting and the CA's
state. Read-only; the actions live in the services they change."""
from dataclasses import dataclass
from datetime import timedelta

from models import Certificate, CertificateRequest, Customer, Notification
from services import ca_overview, clock, operators

EXPIRING_WITHIN = timedelta(days=30)


@dataclass
class Dashboard:
    pending_requests: int | None         # None where the role does not look at customers
    expiring: int | None
    failed_notifications: int | None
    locked_customers: int | None
    ca: ca_overview.Overview


def dashboard(operator) -> Dashboard:
    now = clock.now()
    counts = [None] * 4
    if operators.may(operator, "lookup"):
        counts = [
            CertificateRequest.select().where(CertificateRequest.status == "requested").count(),
            Certificate.select().where((Certificate.status == "valid")
                                       & (Certificate.not_after > now)
                                       & (Certificate.not_after <= now + EXPIRING_WITHIN)).count(),
            Notification.select().where(Notification.status == "failed").count(),
            Customer.select().where(Customer.self_service_suspended_at.is_null(False)).count(),
        ]
    return Dashboard(*counts, ca=ca_overview.overview())
