"""ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 00:37:51.091016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yunrong.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


SQLITE_TRIGGERS = [
    """CREATE TRIGGER trg_postings_immutable_update BEFORE UPDATE ON postings
    BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END""",
    """CREATE TRIGGER trg_postings_immutable_delete BEFORE DELETE ON postings
    BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END""",
    """CREATE TRIGGER trg_postings_open_entry BEFORE INSERT ON postings
    WHEN (SELECT posted FROM journal_entries WHERE id = NEW.entry_id) = 1
    BEGIN SELECT RAISE(ABORT, 'the journal entry is closed'); END""",
    """CREATE TRIGGER trg_entries_immutable BEFORE UPDATE ON journal_entries
    WHEN OLD.posted = 1
    BEGIN SELECT RAISE(ABORT, 'journal entries are immutable'); END""",
    """CREATE TRIGGER trg_entries_close_balanced BEFORE UPDATE OF posted ON journal_entries
    WHEN NEW.posted = 1 AND OLD.posted = 0 AND (
        (SELECT COUNT(*) FROM postings WHERE entry_id = NEW.id) < 2
        OR EXISTS (
            SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency
            HAVING SUM(CASE WHEN side = 'D' THEN amount ELSE -amount END) != 0
        )
    )
    BEGIN SELECT RAISE(ABORT, 'unbalanced journal entry: debits and credits differ'); END""",
    """CREATE TRIGGER trg_entries_no_delete BEFORE DELETE ON journal_entries
    BEGIN SELECT RAISE(ABORT, 'journal entries are immutable'); END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'ledger % are immutable (% refused)', TG_TABLE_NAME, TG_OP; END $$""",
    """CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable()""",
    """CREATE TRIGGER entries_no_delete BEFORE DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_immutable()""",
    """CREATE FUNCTION ledger_posting_open_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF (SELECT posted FROM journal_entries WHERE id = NEW.entry_id) THEN
        RAISE EXCEPTION 'the journal entry % is closed', NEW.entry_id;
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER postings_open_entry BEFORE INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_open_entry()""",
    """CREATE FUNCTION ledger_entry_close() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.posted THEN
        RAISE EXCEPTION 'journal entries are immutable (entry %)', OLD.id;
      END IF;
      IF NEW.posted THEN
        IF (SELECT COUNT(*) FROM postings WHERE entry_id = NEW.id) < 2 OR EXISTS (
          SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency
          HAVING SUM(CASE WHEN side = 'D' THEN amount ELSE -amount END) <> 0
        ) THEN
          RAISE EXCEPTION 'unbalanced journal entry %: debits and credits differ', NEW.id;
        END IF;
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER entries_close_balanced BEFORE UPDATE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_close()""",
    """CREATE FUNCTION ledger_entry_closed_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT (SELECT posted FROM journal_entries WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'journal entry % was left open at commit', NEW.id;
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE CONSTRAINT TRIGGER entries_closed_at_commit AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_closed_at_commit()""",
]

POSTGRES_DROPS = [
    "DROP TRIGGER IF EXISTS entries_closed_at_commit ON journal_entries",
    "DROP TRIGGER IF EXISTS entries_close_balanced ON journal_entries",
    "DROP TRIGGER IF EXISTS postings_open_entry ON postings",
    "DROP TRIGGER IF EXISTS entries_no_delete ON journal_entries",
    "DROP TRIGGER IF EXISTS postings_immutable ON postings",
    "DROP FUNCTION IF EXISTS ledger_entry_closed_at_commit()",
    "DROP FUNCTION IF EXISTS ledger_entry_close()",
    "DROP FUNCTION IF EXISTS ledger_posting_open_entry()",
    "DROP FUNCTION IF EXISTS ledger_immutable()",
]


def _create_triggers() -> None:
    """Entries balance and postings never change: enforced by the database as well as the code."""
    statements = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DROPS:
            op.execute(statement)
        return
    for name in (
        "trg_postings_immutable_update",
        "trg_postings_immutable_delete",
        "trg_postings_open_entry",
        "trg_entries_immutable",
        "trg_entries_close_balanced",
        "trg_entries_no_delete",
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "idempotency_keys",
        sa.Column("id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=60), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", yunrong.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("ref", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("created_at", yunrong.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("reverses_id", yunrong.db.GUID(length=32), nullable=True),
        sa.Column("link_id", yunrong.db.GUID(length=32), nullable=True),
        sa.Column("hold_id", yunrong.db.GUID(length=32), nullable=True),
        sa.Column("external_ref", sa.String(length=100), nullable=True),
        sa.Column("posted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_entries_reverses_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint("ref", name=op.f("uq_journal_entries_ref")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_journal_entries_reverses_id")),
    )
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journal_entries_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_journal_entries_external_ref"), ["external_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_journal_entries_hold_id"), ["hold_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_journal_entries_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_journal_entries_link_id"), ["link_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_journal_entries_value_date"), ["value_date"], unique=False)

    op.create_table(
        "ledger_accounts",
        sa.Column("id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("code", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("owner_org_id", yunrong.db.GUID(length=32), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("no_overdraft", sa.Boolean(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("credits_posted", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("debits_pending", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("credits_pending", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", yunrong.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type IN ('asset', 'liability', 'equity', 'income', 'expense')",
            name=op.f("ck_ledger_accounts_type_known"),
        ),
        sa.CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0",
            name=op.f("ck_ledger_accounts_totals_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_ledger_accounts_owner_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_accounts_owner_org_id"), ["owner_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_accounts_purpose"), ["purpose"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_accounts_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "ledger_adjustments",
        sa.Column("id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("ref", sa.String(length=20), nullable=False),
        sa.Column("legs", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("proposed_by", sa.String(length=36), nullable=False),
        sa.Column("proposed_label", sa.String(length=254), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_label", sa.String(length=254), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("entry_id", yunrong.db.GUID(length=32), nullable=True),
        sa.Column("created_at", yunrong.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", yunrong.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected')", name=op.f("ck_ledger_adjustments_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_ledger_adjustments_entry_id_journal_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_adjustments")),
        sa.UniqueConstraint("ref", name=op.f("uq_ledger_adjustments_ref")),
    )
    op.create_table(
        "holds",
        sa.Column("id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("ref", sa.String(length=20), nullable=False),
        sa.Column("debit_account_id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("credit_account_id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("posted_amount", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("expires_at", yunrong.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", yunrong.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", yunrong.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("entry_id", yunrong.db.GUID(length=32), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'posted', 'voided', 'expired')", name=op.f("ck_holds_status_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_holds_amount_positive")),
        sa.CheckConstraint(
            "posted_amount >= 0 AND posted_amount <= amount", name=op.f("ck_holds_posted_within_amount")
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_holds_credit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_holds_debit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_holds_entry_id_journal_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
        sa.UniqueConstraint("ref", name=op.f("uq_holds_ref")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holds_credit_account_id"), ["credit_account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_debit_account_id"), ["debit_account_id"], unique=False)
        batch_op.create_index("ix_holds_pending_expiry", ["status", "expires_at"], unique=False)

    op.create_table(
        "postings",
        sa.Column("id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("entry_id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("account_id", yunrong.db.GUID(length=32), nullable=False),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", yunrong.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("side IN ('D', 'C')", name=op.f("ck_postings_side_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_postings_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name=op.f("fk_postings_account_id_ledger_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_postings_entry_id_journal_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
    )
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.create_index("ix_postings_account_created", ["account_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_postings_entry_id"), ["entry_id"], unique=False)

    # ### end Alembic commands ###
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postings_entry_id"))
        batch_op.drop_index("ix_postings_account_created")

    op.drop_table("postings")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_pending_expiry")
        batch_op.drop_index(batch_op.f("ix_holds_debit_account_id"))
        batch_op.drop_index(batch_op.f("ix_holds_credit_account_id"))

    op.drop_table("holds")
    op.drop_table("ledger_adjustments")
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_accounts_subject_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_accounts_purpose"))
        batch_op.drop_index(batch_op.f("ix_ledger_accounts_owner_org_id"))

    op.drop_table("ledger_accounts")
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_entries_value_date"))
        batch_op.drop_index(batch_op.f("ix_journal_entries_link_id"))
        batch_op.drop_index(batch_op.f("ix_journal_entries_kind"))
        batch_op.drop_index(batch_op.f("ix_journal_entries_hold_id"))
        batch_op.drop_index(batch_op.f("ix_journal_entries_external_ref"))
        batch_op.drop_index(batch_op.f("ix_journal_entries_created_at"))

    op.drop_table("journal_entries")
    op.drop_table("idempotency_keys")
    # ### end Alembic commands ###
