"""Settings, read once from the environment (prefix ``YUNRONG_``) and from ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from yunrong.supervision.policy import PolicyProfile

VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUNRONG_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'yunrong.db'}",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    secret_key: SecretStr = Field(
        default=SecretStr("dev-insecure-change-me-0123456789abcdef"),
        description="Signs CSRF tokens and derives the key that encrypts TOTP secrets. Set it in production.",
    )
    demo: bool = Field(default=False, description="Demo mode: demo users may log in without TOTP.")
    timezone: str = Field(default="Asia/Shanghai", description="Platform time zone for business dates.")
    policy_profile: str = Field(
        default="cn-2016", description="Regulatory policy profile (cn-2016, eu-ecsp)."
    )
    require_totp: bool = Field(
        default=True, description="Require TOTP two-factor for regulator, operator and agency users."
    )
    session_hours: int = Field(default=8, ge=1, description="Web session lifetime in hours.")
    token_minutes: int = Field(default=60, ge=1, description="API access-token lifetime in minutes.")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins before an account locks.")
    login_lock_minutes: int = Field(default=15, ge=1, description="How long a locked account stays locked.")
    login_ip_limit: int = Field(
        default=30, ge=1, description="Failed logins allowed per client address per lock window."
    )
    log_level: str = Field(default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_json: bool = Field(default=True, description="Write logs as one JSON object per line.")
    mail_backend: str = Field(default="file", description="'file' writes .eml files; 'smtp' sends them.")
    mail_dir: Path = Field(default=VAR_DIR / "mail", description="Folder for the 'file' mail backend.")
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server for the 'smtp' mail backend.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    mail_from: str = Field(default="no-reply@yunrong.local", description="Sender address of e-mails.")
    upload_dir: Path = Field(default=VAR_DIR / "uploads", description="Where uploaded documents are stored.")
    model_dir: Path = Field(
        default=VAR_DIR / "models", description="Where registered credit models are stored."
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, description="Outbox worker idle poll interval.")
    worker_batch: int = Field(default=20, ge=1, description="Events a worker claims per round.")
    outbox_max_attempts: int = Field(default=8, ge=1, description="Attempts before an event is dead.")
    outbox_lease_seconds: int = Field(
        default=300, ge=5, description="How long a worker owns a claimed event before another may retry it."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where this platform is reached (the bank's callbacks go here).",
    )
    bank_callback_secret: SecretStr | None = Field(
        default=None,
        description="Secret of the custodian bank's signed callbacks (default: derived from secret_key).",
    )
    simbank_failure_rate: float = Field(
        default=0.05, ge=0, le=1, description="Simulated bank: share of instructions it fails."
    )
    simbank_duplicate_rate: float = Field(
        default=0.15, ge=0, le=1, description="Simulated bank: share of callbacks it sends twice."
    )
    simbank_max_delay_seconds: float = Field(
        default=8.0,
        ge=0,
        description="Simulated bank: longest delay before a callback (out of order below it).",
    )
    simbank_callback_mode: str = Field(
        default="http",
        description="Simulated bank: 'http' posts callbacks to public_url; 'direct' applies them in-process.",
    )
    funding_window_days: int = Field(default=14, ge=1, le=90, description="Days a listing takes commitments.")
    min_ticket_minor: int = Field(default=10_000, ge=1, description="Smallest commitment, minor units.")
    max_ticket_share_bp: int = Field(
        default=10_000,
        ge=1,
        le=10_000,
        description="Largest commitment as a share of the demand, basis points.",
    )
    platform_fee_bp: int = Field(
        default=50,
        ge=0,
        le=1_000,
        description="Disclosed one-off platform service fee, basis points of principal.",
    )
    autoinvest_optimise: bool = Field(
        default=False,
        description="Auto-invest maximises expected return within the limits (HiGHS), not the fair split.",
    )
    secure_cookies: bool = Field(default=False, description="Mark cookies Secure (set behind HTTPS).")

    @field_validator("policy_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        from yunrong.supervision.policy import PROFILES

        if value not in PROFILES:
            raise ValueError(f"policy_profile must be one of {', '.join(PROFILES)}")
        return value

    @property
    def policy(self) -> PolicyProfile:
        from yunrong.supervision.policy import profile

        return profile(self.policy_profile)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not (value.startswith("sqlite") or value.startswith("postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
