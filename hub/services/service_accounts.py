"""Services that call the gateway: creation, and resolving a bearer token to a service."""

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from hub.core.security import hash_token, new_service_token
from hub.models.actor import Actor
from hub.models.service import Service, ServiceCreate
from hub.services.audit import record_event

__all__ = [
    "DuplicateServiceError",
    "ServiceIdentity",
    "TokenResolver",
    "create_service",
    "ensure_service",
    "list_services",
    "set_limits",
]


class DuplicateServiceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    id: int
    name: str
    team: str
    is_admin: bool
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    monthly_budget_usd: float | None = None

    @property
    def limited(self) -> bool:
        return bool(self.rpm_limit or self.tpm_limit or self.monthly_budget_usd is not None)


def create_service(
    *, session: Session, service_in: ServiceCreate, actor: Actor | None = None
) -> tuple[Service, str]:
    """Create a service and return it with its token; the token is not stored, only its hash.
    `actor` None is the system (the `switchboard` command)."""
    if session.exec(select(Service).where(Service.name == service_in.name)).first():
        raise DuplicateServiceError(f"a service named {service_in.name!r} already exists")
    token = new_service_token()
    service = Service.model_validate(service_in, update={"token_hash": hash_token(token)})
    session.add(service)
    session.flush()
    details = {"name": service.name, "team": service.team, "admin": service.is_admin}
    _record(session, actor, "service.created", service, details)
    session.commit()
    session.refresh(service)
    return service, token


def ensure_service(*, session: Session, name: str, team: str, token: str) -> Service:
    """Create or update a service whose token is given by configuration (the chat app's)."""
    token_hash = hash_token(token)
    try:
        return _upsert_service(session, name=name, team=team, token_hash=token_hash)
    except IntegrityError:
        # Hub processes starting together on one database race to insert the same service;
        # the loser updates the winner's row.
        session.rollback()
        return _upsert_service(session, name=name, team=team, token_hash=token_hash)


def _upsert_service(session: Session, *, name: str, team: str, token_hash: str) -> Service:
    service = session.exec(select(Service).where(Service.name == name)).first()
    if service is None:
        service = Service(name=name, team=team, token_hash=token_hash)
    else:
        service.token_hash = token_hash
        service.team = team
    session.add(service)
    session.commit()
    session.refresh(service)
    return service


def list_services(*, session: Session) -> list[Service]:
    return list(session.exec(select(Service).order_by(Service.name)))


def set_limits(
    *,
    session: Session,
    name: str,
    rpm: int | None,
    tpm: int | None,
    monthly_budget_usd: float | None,
    actor: Actor | None = None,
) -> Service | None:
    """Set a service's limits (None removes one); None when there is no such service.
    Hubs apply them once their token cache expires (`SWITCHBOARD_TOKEN_CACHE_TTL_S`)."""
    service = session.exec(select(Service).where(Service.name == name)).first()
    if service is None:
        return None
    old = _limits(service)
    service.rpm_limit, service.tpm_limit = rpm, tpm
    service.monthly_budget_usd = monthly_budget_usd
    session.add(service)
    details = {"name": service.name, "old": old, "new": _limits(service)}
    _record(session, actor, "service.limits_changed", service, details)
    session.commit()
    session.refresh(service)
    return service


def _limits(service: Service) -> dict[str, float | None]:
    return {
        "rpm": service.rpm_limit,
        "tpm": service.tpm_limit,
        "budget_usd": service.monthly_budget_usd,
    }


def _record(
    session: Session, actor: Actor | None, action: str, service: Service, details: dict[str, Any]
) -> None:
    record_event(
        session=session,
        actor=actor,
        action=action,
        object_kind="service",
        object_id=str(service.id),
        details=details,
    )


class TokenResolver:
    """Resolves bearer tokens to services, caching hits briefly to keep the hot path off the DB."""

    def __init__(self, engine: Engine, ttl_s: float) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[ServiceIdentity | None, float]] = {}

    def cached(self, token: str) -> tuple[bool, ServiceIdentity | None]:
        entry = self._cache.get(hash_token(token))
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def lookup(self, token: str) -> ServiceIdentity | None:
        """Read the database (blocking) and refresh the cache."""
        token_hash = hash_token(token)
        with Session(self._engine) as session:
            service = session.exec(
                select(Service).where(Service.token_hash == token_hash, Service.disabled == False)  # noqa: E712
            ).first()
            identity = (
                ServiceIdentity(
                    service.id,
                    service.name,
                    service.team,
                    service.is_admin,
                    service.rpm_limit,
                    service.tpm_limit,
                    service.monthly_budget_usd,
                )
                if service is not None and service.id is not None
                else None
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token_hash] = (identity, time.monotonic() + self._ttl_s)
        return identity
