"""A service: a caller of the gateway, identified by its token."""

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel

__all__ = ["Service", "ServiceBase", "ServiceCreate", "ServicePublic", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceBase(SQLModel):
    name: str = Field(
        min_length=1, max_length=100, schema_extra={"pattern": r"^[a-z0-9][a-z0-9._-]*$"}
    )
    team: str = Field(min_length=1, max_length=100)
    is_admin: bool = False


class ServiceCreate(ServiceBase):
    pass


class Service(ServiceBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    # Limits an admin sets (`switchboard service limits`); empty means none.
    rpm_limit: int | None = Field(default=None, ge=1)
    tpm_limit: int | None = Field(default=None, ge=1)
    monthly_budget_usd: float | None = Field(default=None, ge=0)


class ServicePublic(ServiceBase):
    id: int
    disabled: bool
    created_at: datetime
    rpm_limit: int | None
    tpm_limit: int | None
    monthly_budget_usd: float | None
