"""Imports every feature's tables so that ``Base.metadata`` is complete (migrations, tests)."""

from yunrong.custody import recon_tables as custody_recon_tables
from yunrong.custody import simbank as custody_simbank
from yunrong.custody import tables as custody_tables
from yunrong.db import Base
from yunrong.decisions import tables as decision_tables
from yunrong.demands import tables as demand_tables
from yunrong.identity import tables as identity_tables
from yunrong.investing import tables as investing_tables
from yunrong.ledger import tables as ledger_tables
from yunrong.matching import tables as matching_tables
from yunrong.messaging import tables as messaging_tables
from yunrong.parties import tables as parties_tables
from yunrong.servicing import tables as servicing_tables
from yunrong.supervision import tables as supervision_tables
from yunrong.verification import tables as verification_tables

__all__ = [
    "Base",
    "custody_recon_tables",
    "custody_simbank",
    "custody_tables",
    "decision_tables",
    "demand_tables",
    "identity_tables",
    "investing_tables",
    "ledger_tables",
    "matching_tables",
    "messaging_tables",
    "parties_tables",
    "servicing_tables",
    "supervision_tables",
    "verification_tables",
]
