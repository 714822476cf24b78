"""The BigQuery emulator and the sample marketplace, through the official client."""

import json
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core.exceptions import BadRequest
from google.cloud import bigquery

from mcp_servers.bigquery.emulator import EmulatorProcess
from mcp_servers.bigquery.seed import DAYS, SCHEMAS, ensure_seeded, generate
from mcp_servers.bigquery.warehouse import WarehouseSettings, make_client

TABLES = {"users", "categories", "posts", "chats", "transactions"}
# A query that fails on the emulator answers 500 to every poll, which the client retries for
# ten minutes by default; these bound every call.
RETRY = bigquery.DEFAULT_RETRY.with_deadline(20)
SERVICE_ACCOUNT = "reader@acme-analytics.iam.gserviceaccount.com"


def query(warehouse: EmulatorProcess, sql: str) -> list[bigquery.Row]:
    job = warehouse.client().query(sql, retry=RETRY, job_retry=None, timeout=20)
    return list(job.result(retry=RETRY, timeout=20))


def test_the_emulator_lists_the_seeded_dataset_and_its_tables(
    warehouse: EmulatorProcess,
) -> None:
    client = warehouse.client()

    assert warehouse.dataset in {dataset.dataset_id for dataset in client.list_datasets()}
    assert {table.table_id for table in client.list_tables(warehouse.dataset)} == TABLES
    labels = client.get_dataset(warehouse.dataset).labels
    assert labels == {"seeded_for": warehouse.today.isoformat(), "seed": str(warehouse.seed)}


def test_posts_have_the_documented_schema(warehouse: EmulatorProcess) -> None:
    table = warehouse.client().get_table(f"{warehouse.dataset}.posts")

    # Real BigQuery answers legacy type names (INTEGER for INT64); the emulator echoes ours.
    legacy = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
    columns = {
        field.name: (legacy.get(field.field_type, field.field_type), field.mode)
        for field in table.schema
    }
    assert columns == {
        "post_id": ("INT64", "REQUIRED"),
        "seller_id": ("INT64", "REQUIRED"),
        "category_id": ("INT64", "REQUIRED"),
        "title": ("STRING", "REQUIRED"),
        "price_eur": ("NUMERIC", "REQUIRED"),
        "created_at": ("TIMESTAMP", "REQUIRED"),
        "status": ("STRING", "REQUIRED"),
        "deleted_at": ("TIMESTAMP", "NULLABLE"),
    }
    assert all(field.description for field in table.schema)
    assert table.num_rows == len(generate(warehouse.today, warehouse.seed)["posts"])


def test_one_category_dwarfs_the_median_over_the_last_ten_days(
    warehouse: EmulatorProcess,
) -> None:
    rows = query(
        warehouse,
        f"""
        SELECT c.name, COUNT(*) AS posts
        FROM `{warehouse.project}.{warehouse.dataset}.posts` AS p
        JOIN `{warehouse.project}.{warehouse.dataset}.categories` AS c USING (category_id)
        WHERE DATE(p.created_at) >= DATE_SUB(CURRENT_DATE(), INTERVAL 10 DAY)
          AND p.deleted_at IS NULL
        GROUP BY c.name
        ORDER BY posts DESC
        """,
    )

    counts = [row["posts"] for row in rows]
    assert len(counts) >= 15
    assert counts[0] > 5 * statistics.median(counts)
    assert rows[0]["name"] == "Women's clothing"


def test_weekend_days_have_fewer_posts_than_weekdays(warehouse: EmulatorProcess) -> None:
    rows = query(
        warehouse,
        f"""
        SELECT EXTRACT(DAYOFWEEK FROM day) IN (1, 7) AS weekend, AVG(posts) AS per_day
        FROM (
          SELECT DATE(created_at) AS day, COUNT(*) AS posts
          FROM {warehouse.dataset}.posts
          GROUP BY day
        )
        GROUP BY weekend
        """,
    )

    per_day = {row["weekend"]: row["per_day"] for row in rows}
    assert per_day[True] < 0.75 * per_day[False]


def test_the_data_covers_the_sixty_whole_days_before_today(warehouse: EmulatorProcess) -> None:
    (row,) = query(
        warehouse,
        f"""
        SELECT MIN(created_at) AS first, MAX(created_at) AS last,
               COUNT(DISTINCT DATE(created_at)) AS days
        FROM {warehouse.dataset}.posts
        """,
    )

    midnight = datetime.combine(warehouse.today, datetime.min.time(), tzinfo=UTC)
    assert row["first"].date() == warehouse.today - timedelta(days=DAYS)
    assert midnight - timedelta(days=1) < row["last"] < midnight
    assert row["days"] == DAYS


def test_a_dry_run_checks_a_query_without_running_it(warehouse: EmulatorProcess) -> None:
    client = warehouse.client()
    config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)

    job = client.query(
        f"SELECT title, price_eur FROM {warehouse.dataset}.posts", job_config=config, retry=RETRY
    )

    assert (job.state, job.statement_type) == ("DONE", "SELECT")
    assert [field.name for field in job.schema] == ["title", "price_eur"]
    # The emulator reports 0 bytes processed; real BigQuery reports what the query would scan.
    assert job.total_bytes_processed is not None
    delete = client.query(
        f"DELETE FROM {warehouse.dataset}.posts WHERE TRUE", job_config=config, retry=RETRY
    )
    assert delete.statement_type == "DELETE"
    assert client.get_table(f"{warehouse.dataset}.posts").num_rows > 0
    with pytest.raises(BadRequest):
        client.query(
            f"SELECT no_such_column FROM {warehouse.dataset}.posts",
            job_config=config,
            retry=RETRY,
        )


def test_the_same_day_and_seed_generate_the_same_rows() -> None:
    today = date(2026, 3, 14)

    rows = generate(today, seed=7)

    assert rows == generate(today, seed=7)
    assert rows != generate(today, seed=8)
    assert set(rows) == TABLES
    assert {name: list(rows[name][0]) for name in rows} == {
        name: [field.name for field in schema] for name, schema in SCHEMAS.items()
    }
    assert 2000 <= len(rows["posts"]) <= 5000
    assert len(rows["categories"]) == 20


def test_sales_follow_a_chat_and_deleted_posts_are_not_sold() -> None:
    rows = generate(date(2026, 3, 14))
    posts = {post["post_id"]: post for post in rows["posts"]}
    chatted = {(chat["post_id"], chat["buyer_id"]) for chat in rows["chats"]}

    for sale in rows["transactions"]:
        post = posts[sale["post_id"]]
        assert (sale["post_id"], sale["buyer_id"]) in chatted
        assert sale["seller_id"] == post["seller_id"] != sale["buyer_id"]
        assert sale["created_at"] > post["created_at"]
        assert sale["amount_eur"] <= post["price_eur"]
    assert any(post["deleted_at"] is not None for post in posts.values())
    for post in posts.values():
        if post["deleted_at"] is not None:
            assert post["status"] != "sold"
            assert post["deleted_at"] > post["created_at"]


def test_a_dataset_seeded_on_an_earlier_day_is_seeded_again(warehouse: EmulatorProcess) -> None:
    client = warehouse.client()
    dataset = "marketplace_reseed"
    yesterday = warehouse.today - timedelta(days=1)
    try:
        assert ensure_seeded(client, dataset, today=yesterday) is True
        assert ensure_seeded(client, dataset, today=yesterday) is False
        assert ensure_seeded(client, dataset, today=warehouse.today) is True

        (row,) = query(warehouse, f"SELECT MAX(created_at) AS last FROM {dataset}.posts")
        assert row["last"].date() == warehouse.today - timedelta(days=1)
    finally:
        client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def test_settings_point_at_the_emulator_unless_only_a_real_project_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    for name in ("PROJECT", "EMULATOR", "DATASET", "LOCATION", "CREDENTIALS"):
        monkeypatch.delenv(f"SWITCHBOARD_BIGQUERY_{name}", raising=False)

    local = WarehouseSettings()
    assert (local.uses_emulator, local.emulator_url) == (True, "http://127.0.0.1:9050")
    assert (local.project_id, local.dataset) == ("switchboard-local", "marketplace")

    monkeypatch.setenv("SWITCHBOARD_BIGQUERY_PROJECT", "acme-analytics")
    monkeypatch.setenv("SWITCHBOARD_BIGQUERY_EMULATOR", "127.0.0.1:9999")
    assert WarehouseSettings().uses_emulator
    assert make_client(WarehouseSettings()).project == "acme-analytics"

    monkeypatch.delenv("SWITCHBOARD_BIGQUERY_EMULATOR")
    monkeypatch.setenv("SWITCHBOARD_BIGQUERY_CREDENTIALS", str(_service_account(tmp_path)))
    real = WarehouseSettings()
    client = make_client(real)
    assert not real.uses_emulator
    assert client.project == "acme-analytics"
    assert client._connection.API_BASE_URL == "https://bigquery.googleapis.com"
    assert client._credentials.service_account_email == SERVICE_ACCOUNT


def _service_account(folder: Path) -> Path:
    """A service-account key file with a throwaway key: enough to build a client offline."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = folder / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-analytics",
                "private_key_id": "0",
                "private_key": pem,
                "client_email": SERVICE_ACCOUNT,
                "client_id": "0",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path
