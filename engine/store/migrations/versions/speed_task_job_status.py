"""speed: an index of tasks by job and status, so that a settled job's end is one probe

Revision ID: speed_task_job_status
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "speed_task_job_status"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_job_status", ["job_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_job_status")
