"""workflow definitions: versioned documents, their sub-workflow uses, jobs' workflow columns

Revision ID: workflows_definitions
Revises: speed_task_indexes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflows_definitions"
down_revision: str | None = "speed_task_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("params_schema", sa.JSON(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "version"),
    )
    op.create_table(
        "workflow_uses",
        sa.Column("workflow", sa.String(length=128), nullable=False),
        sa.Column("uses", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("workflow", "uses"),
    )
    op.create_index("ix_workflow_uses_uses", "workflow_uses", ["uses"])
    op.add_column("jobs", sa.Column("workflow_name", sa.String(length=128), nullable=True))
    op.add_column("jobs", sa.Column("workflow_version", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("workflow_context", sa.JSON(), nullable=True))
    op.create_index("ix_jobs_workflow", "jobs", ["workflow_name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_workflow", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("workflow_context")
        batch.drop_column("workflow_version")
        batch.drop_column("workflow_name")
    op.drop_index("ix_workflow_uses_uses", table_name="workflow_uses")
    op.drop_table("workflow_uses")
    op.drop_table("workflows")
