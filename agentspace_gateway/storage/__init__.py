"""Persistence: one SQLite database, numbered migrations, and one small repository per table.

Nothing outside this package writes SQL.
"""

from agentspace_gateway.storage.audit_log import AuditEntry, AuditLog
from agentspace_gateway.storage.database import Database
from agentspace_gateway.storage.errors import MigrationError, StorageError
from agentspace_gateway.storage.estimate_accuracy import EstimateAccuracy, Spread
from agentspace_gateway.storage.messages import (
    HistoryVersion,
    MessageRepository,
    MessageRow,
    NewMessage,
    RecentMessages,
    Role,
)
from agentspace_gateway.storage.migrator import (
    AppliedMigration,
    Migration,
    MigrationStatus,
    apply_migrations,
    available_migrations,
    migration_status,
)
from agentspace_gateway.storage.replies import RecordedReply, ReplyRecorder
from agentspace_gateway.storage.sessions import SessionRepository, SessionRow
from agentspace_gateway.storage.usage import NewUsage, UsageLedger, UsageRecord
from agentspace_gateway.storage.usage_totals import ModelUsage

__all__ = [
    "AppliedMigration",
    "AuditEntry",
    "AuditLog",
    "Database",
    "EstimateAccuracy",
    "HistoryVersion",
    "MessageRepository",
    "MessageRow",
    "Migration",
    "MigrationError",
    "MigrationStatus",
    "ModelUsage",
    "NewMessage",
    "NewUsage",
    "RecentMessages",
    "RecordedReply",
    "ReplyRecorder",
    "Role",
    "SessionRepository",
    "SessionRow",
    "Spread",
    "StorageError",
    "UsageLedger",
    "UsageRecord",
    "apply_migrations",
    "available_migrations",
    "migration_status",
]
