"""sub-workflows: child jobs know their parent task and depth; tasks know their child job

Revision ID: workflows_subworkflows
Revises: workflows_for_each
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflows_subworkflows"
down_revision: str | None = "workflows_for_each"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("parent_job_id", sa.String(length=40), nullable=True))
    op.add_column("jobs", sa.Column("parent_task", sa.String(length=128), nullable=True))
    op.add_column("jobs", sa.Column("depth", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_parent", "jobs", ["parent_job_id"])
    op.add_column("tasks", sa.Column("child_job_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "child_job_id")
    op.drop_index("ix_jobs_parent", table_name="jobs")
    op.drop_column("jobs", "depth")
    op.drop_column("jobs", "parent_task")
    op.drop_column("jobs", "parent_job_id")
