"""speed: indexes of tasks by job and status (is a job over?) and by status in claim order

Revision ID: speed_task_indexes
Revises: security_keys_audit
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "speed_task_indexes"
down_revision: str | None = "security_keys_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_job_status", ["job_id", "status"], unique=False)
        batch_op.create_index(
            "ix_tasks_queue",
            ["status", sa.literal_column("priority DESC"), "next_attempt_at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_queue")
        batch_op.drop_index("ix_tasks_job_status")
