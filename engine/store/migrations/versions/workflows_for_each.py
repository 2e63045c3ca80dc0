"""for_each: instance rows point at their parent task, which keeps the instance counters

Revision ID: workflows_for_each
Revises: workflows_definitions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflows_for_each"
down_revision: str | None = "workflows_definitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("parent_id", "item_index", "items_total", "items_succeeded", "items_failed")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("parent_id", sa.BigInteger(), nullable=True))
    for name in _COLUMNS[1:]:
        op.add_column("tasks", sa.Column(name, sa.Integer(), nullable=True))
    op.create_index("ix_tasks_parent", "tasks", ["parent_id", "item_index"])


def downgrade() -> None:
    op.drop_index("ix_tasks_parent", table_name="tasks")
    for name in reversed(_COLUMNS):
        op.drop_column("tasks", name)
