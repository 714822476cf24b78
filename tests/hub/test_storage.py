"""Migrations, services and users on SQLite and on this machine's PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect
from sqlmodel import Session, select

from hub.core.db import get_engine, migrate
from hub.core.security import hash_token
from hub.models.service import Service, ServiceCreate
from hub.services.service_accounts import (
    DuplicateServiceError,
    TokenResolver,
    create_service,
    ensure_service,
)
from hub.services.users import (
    DuplicateUserError,
    GroupRules,
    authenticate_password,
    create_user,
    sign_in_from_claims,
)


def test_migrations_create_the_schema_and_can_run_twice(database_url: str):
    migrate(database_url)
    migrate(database_url)
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert {"service", "usagerecord", "hub_user", "alembic_version"} <= tables


def test_a_service_token_is_stored_only_as_a_hash(database_url: str):
    migrate(database_url)
    engine = get_engine(database_url)
    with Session(engine) as session:
        _, token = create_service(
            session=session, service_in=ServiceCreate(name="billing", team="finance")
        )
        stored = session.exec(select(Service)).one()
        assert token not in str(stored.model_dump())
        assert stored.token_hash == hash_token(token)
        with pytest.raises(DuplicateServiceError):
            create_service(session=session, service_in=ServiceCreate(name="billing", team="x"))

    resolver = TokenResolver(engine, ttl_s=30)
    identity = resolver.lookup(token)
    assert identity is not None and (identity.name, identity.team) == ("billing", "finance")
    assert resolver.lookup("sb-wrong") is None
    assert resolver.cached(token) == (True, identity)


def test_ensure_service_rotates_the_configured_token(database_url: str):
    migrate(database_url)
    engine = get_engine(database_url)
    with Session(engine) as session:
        ensure_service(session=session, name="chat-app", team="platform", token="first")
        ensure_service(session=session, name="chat-app", team="platform", token="second")
    resolver = TokenResolver(engine, ttl_s=30)
    assert resolver.lookup("first") is None
    assert resolver.lookup("second") is not None


def test_hubs_starting_together_all_ensure_the_same_service(database_url: str):
    """Hub processes started together on one database each ensure the chat app's service at
    start; none may fail because another inserted it first."""
    migrate(database_url)
    engine = get_engine(database_url)
    starters = 8
    together = threading.Barrier(starters)

    def start_hub(_: int) -> str:
        with Session(engine) as session:
            together.wait()
            service = ensure_service(session=session, name="chat-app", team="platform", token="t")
            return service.name

    with ThreadPoolExecutor(starters) as pool:
        assert list(pool.map(start_hub, range(starters))) == ["chat-app"] * starters
    with Session(engine) as session:
        assert len(session.exec(select(Service)).all()) == 1
    assert TokenResolver(engine, ttl_s=30).lookup("t") is not None


def test_users_sign_in_with_their_password_only(database_url: str):
    migrate(database_url)
    with Session(get_engine(database_url)) as session:
        create_user(session=session, username="ada", password="correct horse")
        with pytest.raises(DuplicateUserError):
            create_user(session=session, username="ada", password="other")
        assert authenticate_password(session=session, username="ada", password="correct horse")
        assert authenticate_password(session=session, username="ada", password="wrong") is None
        assert authenticate_password(session=session, username="bob", password="x") is None


def test_every_person_gets_a_key_of_their_own_that_sign_ins_keep(database_url: str):
    migrate(database_url)
    rules = GroupRules(
        claim="groups", team_prefix="team-", admin_groups=frozenset(), builder_groups=frozenset()
    )
    issuer = "https://id.example.com"
    with Session(get_engine(database_url)) as session:
        local = create_user(session=session, username="ada", password="correct horse").key
        first = sign_in_from_claims(
            session=session, issuer=issuer, claims={"sub": "s-1", "name": "Bo"}, rules=rules
        ).key
        again = sign_in_from_claims(
            session=session, issuer=issuer, claims={"sub": "s-1", "name": "Bo B."}, rules=rules
        ).key
        other = sign_in_from_claims(
            session=session, issuer=issuer, claims={"sub": "s-2"}, rules=rules
        ).key
    assert again == first
    assert len({local, first, other}) == 3
    assert all(len(key) == 32 for key in (local, first, other))
