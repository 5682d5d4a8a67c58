"""Versioned schema migrations. The database records its version; `upgrade` applies the
missing steps in order, each in its own transaction, so an older database upgrades in place."""
from peewee import BooleanField, DateTimeField, IntegerField, Model
from playhouse.migrate import SchemaMigrator, migrate

from models.db import db
from models.tables import (
    ALL_TABLES,
    AuditCheckpoint,
    CaFile,
    CaParameter,
    Certificate,
    CmpTransaction,
    Crl,
    EnrolmentCode,
    OcspResponse,
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


class SchemaVersion(Model):
    version = IntegerField()

    class Meta:
        database = db
        table_name = "schema_version"


def _v1_initial(database):
    database.create_tables(ALL_TABLES)


def _add_column(database, table: str, name: str, field) -> None:
    """Add a column unless it is there: a fresh database gets today's tables from step 1,
    so later steps must leave them as they are."""
    if name not in {column.name for column in database.get_columns(table)}:
        migrate(SchemaMigrator.from_database(database).add_column(table, name, field))


def _v2_sessions_valid_from(database):
    _add_column(database, "customer", "sessions_valid_from", DateTimeField(null=True))


def _v3_crl(database):
    database.create_tables([Crl])             # safe: create_tables skips existing tables
    _add_column(database, "certificate", "status_changed_at", DateTimeField(null=True))
    database.execute_sql("CREATE INDEX IF NOT EXISTS certificate_status_not_after "
                         "ON certificate (status, not_after)")


def _v4_transfer(database):
    database.create_tables([Transfer])


def _v5_registered_certificate(database):
    database.create_tables([RegisteredCertificate])


def _v6_renewal(database):
    _add_column(database, "certificate", "auto_renew_days", IntegerField(null=True))
    _add_column(database, "certificate", "renewal_started_at", DateTimeField(null=True))
    database.create_tables([Reminder])


def _v7_holding_under_attack(database):
    _add_column(database, "customer", "self_service_suspended_at", DateTimeField(null=True))
    _add_column(database, "notification", "sealed", BooleanField(default=False))
    database.create_tables([UnpublishedChange])


def _v8_audit_checkpoints(database):
    database.create_tables([AuditCheckpoint, SerialReservation])


def _v9_signing_tally(database):
    database.create_tables([SigningTally])


def _v10_operators(database):
    database.create_tables([Operator])


def _v11_second_approval(database):
    database.create_tables([SecondApproval])


# Named as peewee names the indexes models.tables declares, which is how a fresh database
# gets them (step 1): both ways end with the same indexes.
_V12_INDEXES = {
    "customer_name": "customer (name)",
    "customer_representative": "customer (representative)",
    "customer_phone": "customer (phone)",
    "notification_status_id": "notification (status, id)",
    "auditevent_actor_id": "auditevent (actor, id)",
    "auditevent_action_id": "auditevent (action, id)",
    "auditevent_target_id": "auditevent (target, id)",
    "auditevent_at_id": "auditevent (at, id)",
}


def _v12_console_indexes(database):
    for name, columns in _V12_INDEXES.items():
        database.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {columns}")


def _v13_crl_partitions(database):
    database.create_tables([CaParameter])
    for model in (Certificate, Crl, UnpublishedChange):
        _add_column(database, model._meta.table_name, "crl_partition", IntegerField(null=True))
    # A CRL reads its revoked rows from an index alone (the rows themselves, with their
    # DER, are not read): one index per partition's CRL, one for the full CRL, which
    # replaces version 3's (status, not_after), its prefix.
    database.execute_sql("CREATE INDEX IF NOT EXISTS certificate_crl_partition ON certificate "
                         "(crl_partition, status, not_after, serial, revoked_at, "
                         "revocation_reason)")
    database.execute_sql("CREATE INDEX IF NOT EXISTS certificate_crl_entries ON certificate "
                         "(status, not_after, serial, revoked_at, revocation_reason)")
    database.execute_sql("DROP INDEX IF EXISTS certificate_status_not_after")
    # CRL numbers rise per scope (RFC 5280 5.2.3): unique within the full CRL's and within
    # each partition's, in place of version 3's unique number. They also find the latest.
    database.execute_sql("DROP INDEX IF EXISTS crl_number")
    database.execute_sql("CREATE UNIQUE INDEX IF NOT EXISTS crl_full_number ON crl (number) "
                         "WHERE crl_partition IS NULL")
    database.execute_sql("CREATE UNIQUE INDEX IF NOT EXISTS crl_partition_number "
                         "ON crl (crl_partition, number) WHERE crl_partition IS NOT NULL")


def _v14_ocsp_response(database):
    database.create_tables([OcspResponse])


def _v15_shared_ca(database):
    # The files of <instance>/ca and <instance>/trust move in when the app next starts
    # (services.ca_store.adopt_folder, services.trust.adopt_folder).
    database.create_tables([CaFile, TrustCertificate])


def _v16_enrolment_codes(database):
    database.create_tables([EnrolmentCode])


def _v17_cmp_transaction(database):
    database.create_tables([CmpTransaction])


# (version, what it does, step). Append only: a released step never changes.
MIGRATIONS = [
    (1, "customers, accounts, codes, certificates, requests, downloads, outbox, audit",
     _v1_initial),
    (2, "customer.sessions_valid_from: signing out ends the session on the server too",
     _v2_sessions_valid_from),
    (3, "crl table; certificate.status_changed_at; certificates indexed by status",
     _v3_crl),
    (4, "transfer: certificate files moving between devices", _v4_transfer),
    (5, "registered_certificate: other institutions' certificates customers registered",
     _v5_registered_certificate),
    (6, "renewal: certificate.auto_renew_days and renewal_started_at; reminder table",
     _v6_renewal),
    (7, "customer.self_service_suspended_at; notification.sealed (codes encrypted at rest); "
        "unpublished_change (a CRL publication is never lost)",
     _v7_holding_under_attack),
    (8, "audit_checkpoint: the audit chain's head, signed by a key outside the database; "
        "serial_reservation: no signature without a record",
     _v8_audit_checkpoints),
    (9, "signing_tally: signatures made by the online CA keys, per kind", _v9_signing_tally),
    (10, "operator: the bank's staff who use the console", _v10_operators),
    (11, "second_approval: four eyes on an operator's weightiest decisions", _v11_second_approval),
    (12, "indexes for the console: customers by name, representative and phone; the outbox "
         "by status; the audit trail by actor, action, target and time",
     _v12_console_indexes),
    (13, "partitioned CRLs: caparameter; crl_partition on certificate, crl and "
         "unpublishedchange (databases without the setting get 16 partitions)",
     _v13_crl_partitions),
    (14, "ocsp_response: pre-signed OCSP answers, served as stored", _v14_ocsp_response),
    (15, "ca_file and trust_certificate: the CA and the trust anchors in the database, which "
         "every host shares, instead of one host's instance folder", _v15_shared_ca),
    (16, "enrolment_code: reference numbers and authorisation codes for CMP clients",
     _v16_enrolment_codes),
    (17, "cmp_transaction: CMP enrolments waiting for the client's confirmation",
     _v17_cmp_transaction),
]


def applied_versions() -> set[int]:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return set()
    return {row.version for row in SchemaVersion.select(SchemaVersion.version)}


def current_version() -> int:
    return max(applied_versions(), default=0)


def upgrade(migrations=None) -> list[int]:
    """Apply every migration the database has not recorded, in order; return the versions
    applied. Missing ones, not only newer ones: branches number their steps apart, so a
    database may have 14 before 12 and 13 arrive (each step leaves what is there alone)."""
    migrations = MIGRATIONS if migrations is None else migrations
    db.create_tables([SchemaVersion])
    done = applied_versions()
    applied = []
    for version, _what, step in migrations:
        if version in done:
            continue
        with db.atomic():
            step(db.obj)
            SchemaVersion.create(version=version)
        applied.append(version)
    return applied
