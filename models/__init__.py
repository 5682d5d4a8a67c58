"""Storage: the Peewee models, the database handle and the schema migrations.

Nothing here knows about Flask or the rules of the service; it only keeps rows.
"""
from models.db import db, open_database  # noqa: F401
from models.tables import (  # noqa: F401
    ALL_TABLES,
    Account,
    AttemptCounter,
    AuditCheckpoint,
    AuditEvent,
    CaFile,
    CaParameter,
    Certificate,
    CertificateRequest,
    CmpTransaction,
    Crl,
    Customer,
    Download,
    EnrolmentCode,
    Notification,
    OcspResponse,
    OneTimeCode,
    Operator,
    RegisteredCertificate,
    Reminder,
    SecondApproval,
    SerialReservation,
    SigningTally,
    Transfer,
    TrustCertificate,
    UnpublishedChange,
)
