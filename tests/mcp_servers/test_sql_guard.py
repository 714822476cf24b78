"""Layer one of the BigQuery SQL guard: what it refuses, what it lets through, and why."""

from dataclasses import replace

import pytest

from mcp_servers.bigquery.guard import (
    MAX_QUERY_CHARS,
    CheckedQuery,
    GuardPolicy,
    QueryRefusedError,
    check_query,
)

POLICY = GuardPolicy(
    project="acme-analytics",
    default_dataset="marketplace",
    allowed_datasets=frozenset({"marketplace", "finance", "shared-data.reference"}),
)
ORDERS = "acme-analytics.marketplace.orders"
CUSTOMERS = "acme-analytics.marketplace.customers"
LEDGER = "acme-analytics.finance.ledger"

ONE_STATEMENT = "Only one SELECT statement is allowed; found 2 statements"
OUTSIDE = "outside the allowed datasets"
MODELS = "ML.* and AI.* functions run models"
UDF = "user-defined or namespaced function"
TVF = "Table-valued functions"
EXTERNAL = "EXTERNAL_QUERY is not allowed: it runs a query on an external database"
TIME_TRAVEL = "Time travel (FOR SYSTEM_TIME AS OF) is not allowed here"
SESSION = "SESSION_USER() is not allowed here"


def refusal(sql: str) -> str:
    with pytest.raises(QueryRefusedError) as caught:
        check_query(sql, POLICY)
    return str(caught.value)


REFUSED = [
    # Statements that write, change or script.
    pytest.param("DROP TABLE marketplace.orders", "DROP statements", id="drop-table"),
    pytest.param("DELETE FROM orders WHERE TRUE", "DELETE statements", id="delete"),
    pytest.param("UPDATE orders SET total = 0 WHERE TRUE", "UPDATE statements", id="update"),
    pytest.param(
        "MERGE marketplace.orders t USING marketplace.staging s ON t.id = s.id "
        "WHEN MATCHED THEN DELETE",
        "MERGE statements",
        id="merge",
    ),
    pytest.param(
        "INSERT INTO marketplace.orders SELECT * FROM marketplace.staging",
        "INSERT statements",
        id="insert-select",
    ),
    pytest.param(
        "CREATE TABLE marketplace.copy AS SELECT * FROM marketplace.orders",
        "CREATE statements",
        id="create-table-as",
    ),
    pytest.param(
        "CREATE OR REPLACE VIEW marketplace.v AS SELECT 1 AS x", "CREATE statements", id="view"
    ),
    pytest.param(
        "EXPORT DATA OPTIONS (uri = 'gs://bucket/*.csv', format = 'CSV') AS SELECT * FROM orders",
        "EXPORT DATA statements",
        id="export-data",
    ),
    pytest.param(
        "LOAD DATA INTO marketplace.orders FROM FILES (format = 'CSV', uris = ['gs://b/x.csv'])",
        "LOAD DATA statements",
        id="load-data",
    ),
    pytest.param("TRUNCATE TABLE orders", "TRUNCATE statements", id="truncate"),
    pytest.param("ALTER TABLE orders ADD COLUMN x INT64", "ALTER statements", id="alter"),
    pytest.param(
        "GRANT `roles/bigquery.dataViewer` ON TABLE orders TO 'user:a@example.com'",
        "GRANT statements",
        id="grant",
    ),
    pytest.param("CALL marketplace.do_things()", "CALL statements", id="call"),
    pytest.param(
        "EXECUTE IMMEDIATE 'DROP TABLE marketplace.orders'",
        "EXECUTE IMMEDIATE statements",
        id="execute-immediate",
    ),
    pytest.param("DECLARE x INT64 DEFAULT 1", "DECLARE statements", id="declare"),
    pytest.param("SET @@dataset_id = 'other'", "SET statements", id="set-system-variable"),
    pytest.param("BEGIN\n  SELECT 1;\nEND;", "found 2 statements (BEGIN, END)", id="begin-end"),
    pytest.param(
        "BEGIN DELETE FROM orders WHERE TRUE; END", "found 2 statements", id="begin-delete-end"
    ),
    pytest.param(
        "WITH x AS (SELECT 1) DELETE FROM orders WHERE TRUE", "DELETE statements", id="with-delete"
    ),
    pytest.param(
        "WITH x AS (DELETE FROM orders WHERE TRUE) SELECT 1",
        "DELETE statements",
        id="delete-inside-a-cte",
    ),
    pytest.param("SELECT 1 INTO marketplace.copy", "SELECT ... INTO writes", id="select-into"),
    pytest.param("SELECT 1 FROM orders FOR UPDATE", "Locking reads", id="for-update"),
    # More than one statement, however it is hidden.
    pytest.param("SELECT 1; DROP TABLE orders", ONE_STATEMENT, id="select-then-drop"),
    pytest.param("SELECT 1;\nDROP TABLE orders;", ONE_STATEMENT, id="two-lines-two-statements"),
    pytest.param("SELECT 1 /* ; */ ; DROP TABLE orders", ONE_STATEMENT, id="block-comment-then"),
    pytest.param("SELECT 1 -- note\n; DROP TABLE orders", ONE_STATEMENT, id="dash-comment-then"),
    pytest.param("SELECT 1 # note\n; DROP TABLE orders", ONE_STATEMENT, id="hash-comment-then"),
    pytest.param(
        "SELECT 1 /* /* */ ; DROP TABLE orders; /* */", ONE_STATEMENT, id="nested-comment-trick"
    ),
    # Comment, case, whitespace and quoting tricks on a single statement.
    pytest.param(
        "/* harmless */ dRoP /* x */ TaBlE `acme-analytics.marketplace.orders`",
        "DROP statements",
        id="mixed-case-drop-between-comments",
    ),
    pytest.param(
        "-- a comment\n\tDeLeTe\n\tFROM `marketplace`.`orders`\n\tWHERE TRUE",
        "DELETE statements",
        id="tabs-newlines-backticks-delete",
    ),
    pytest.param(
        "# hi\nmErGe orders t USING staging s ON FALSE WHEN NOT MATCHED THEN INSERT ROW",
        "MERGE statements",
        id="hash-comment-then-merge",
    ),
    pytest.param("iNsErT\r\nINTO orders (id) VALUES (1)", "INSERT statements", id="crlf-insert"),
    # Tables outside the allowed datasets.
    pytest.param("SELECT * FROM other_project.other_dataset.t", OUTSIDE, id="other-project"),
    pytest.param(
        "SELECT * FROM `other_project.other_dataset.t`", OUTSIDE, id="other-project-backticked"
    ),
    pytest.param("SELECT * FROM secret.t", OUTSIDE, id="other-dataset"),
    pytest.param("SELECT * FROM `acme-analytics.secret.t`", OUTSIDE, id="same-project-other"),
    pytest.param("SELECT * FROM `MARKETPLACE.orders`", OUTSIDE, id="dataset-names-are-exact"),
    pytest.param("SELECT * FROM other.events_*", OUTSIDE, id="wildcard-table-outside"),
    pytest.param("SELECT * FROM `other.events_*`", OUTSIDE, id="backticked-wildcard-outside"),
    pytest.param(
        "SELECT * FROM secret.INFORMATION_SCHEMA.TABLES", OUTSIDE, id="information-schema-other"
    ),
    pytest.param(
        "SELECT * FROM `region-us`.INFORMATION_SCHEMA.JOBS",
        "INFORMATION_SCHEMA.JOBS is not allowed",
        id="region-jobs",
    ),
    pytest.param(
        "SELECT * FROM marketplace.INFORMATION_SCHEMA.JOBS_BY_USER",
        "INFORMATION_SCHEMA.JOBS_BY_USER is not allowed",
        id="jobs-view-in-an-allowed-dataset",
    ),
    pytest.param(
        "SELECT * FROM INFORMATION_SCHEMA.TABLES",
        "Qualify INFORMATION_SCHEMA with a dataset",
        id="unqualified-information-schema",
    ),
    pytest.param(
        "SELECT * FROM marketplace.orders JOIN secret.t USING (id)", OUTSIDE, id="joined-outside"
    ),
    pytest.param(
        "SELECT * FROM orders WHERE id IN (SELECT id FROM secret.t)", OUTSIDE, id="in-subquery"
    ),
    pytest.param("WITH s AS (SELECT * FROM secret.t) SELECT * FROM s", OUTSIDE, id="in-a-cte"),
    pytest.param(
        "SELECT * FROM orders o JOIN o.items AS i ON TRUE",
        "write UNNEST(o.items)",
        id="array-path-join-is-read-as-a-table",
    ),
    pytest.param("SELECT * FROM a.b.c.d", "too many parts", id="four-part-name"),
    pytest.param(r"SELECT * FROM `secret\x2et`", OUTSIDE, id="escaped-dot-in-a-quoted-name"),
    pytest.param(r"SELECT * FROM `se\u0063ret`.t", OUTSIDE, id="escaped-letter-in-a-dataset"),
    # A name in one pair of backticks is a table to BigQuery even when its first part is also
    # the alias of an earlier FROM item; sqlglot read these as arrays of that item.
    pytest.param(
        "SELECT * FROM marketplace.orders AS secret, `secret.t`", OUTSIDE, id="after-an-alias"
    ),
    pytest.param(
        "SELECT * FROM marketplace.orders AS secret CROSS JOIN `secret.t` AS t",
        OUTSIDE,
        id="after-an-alias-cross-join",
    ),
    pytest.param(
        "SELECT * FROM marketplace.orders AS `acme-analytics`, `acme-analytics.secret.t`",
        OUTSIDE,
        id="after-an-alias-with-the-project",
    ),
    pytest.param(
        "SELECT * FROM marketplace.orders AS secret, `secret.events_*`",
        OUTSIDE,
        id="after-an-alias-wildcard-table",
    ),
    pytest.param(
        "SELECT * FROM marketplace.orders AS secret, `secret.INFORMATION_SCHEMA.TABLES`",
        OUTSIDE,
        id="after-an-alias-information-schema",
    ),
    pytest.param(
        r"SELECT * FROM marketplace.orders AS secret, `secret\x2et`",
        OUTSIDE,
        id="after-an-alias-escaped-dot",
    ),
    pytest.param(
        "SELECT * FROM marketplace.orders AS secret, secret.INFORMATION_SCHEMA.TABLES",
        OUTSIDE,
        id="after-an-alias-information-schema-unquoted",
    ),
    # Names BigQuery cannot read as written, which sqlglot quietly mended.
    pytest.param(
        "SELECT * FROM `evil.acme-analytics.marketplace.INFORMATION_SCHEMA.TABLES`",
        "has too many parts",
        id="information-schema-with-a-part-before-the-project",
    ),
    pytest.param(
        "SELECT * FROM evil.`acme-analytics`.marketplace.INFORMATION_SCHEMA.TABLES",
        "has too many parts",
        id="information-schema-with-five-parts",
    ),
    pytest.param("SELECT * FROM `.marketplace.orders`", "empty part", id="leading-dot"),
    pytest.param("SELECT * FROM ``.marketplace.orders", "empty part", id="empty-project"),
    pytest.param("SELECT * FROM `acme-analytics..orders`", "empty part", id="empty-dataset"),
    pytest.param(
        r"SELECT * FROM `secret\56t`", "escape sequence", id="octal-escape-with-two-digits"
    ),
    pytest.param(r"SELECT * FROM `market\place`.orders", "escape sequence", id="unknown-escape"),
    # EXTERNAL_QUERY wherever it hides.
    pytest.param("SELECT * FROM EXTERNAL_QUERY('acme.us.pg', 'SELECT 1')", EXTERNAL, id="eq"),
    pytest.param(
        'SELECT * FROM (SELECT * FROM external_query("conn", "select 1"))',
        EXTERNAL,
        id="external-query-lower-case-in-subquery",
    ),
    pytest.param(
        "WITH x AS (SELECT * FROM ExTeRnAl_QuErY('c', 'select 1')) SELECT * FROM x",
        EXTERNAL,
        id="external-query-mixed-case-in-cte",
    ),
    pytest.param(
        "SELECT (SELECT a FROM EXTERNAL_QUERY('c', 'select 1 AS a'))",
        EXTERNAL,
        id="external-query-in-scalar-subquery",
    ),
    pytest.param(
        "SELECT * FROM `EXTERNAL_QUERY`('c', 'select 1')", EXTERNAL, id="external-query-backticked"
    ),
    pytest.param(
        "SELECT * FROM orders WHERE id IN (SELECT id FROM EXTERNAL_QUERY('c', '''x'''))",
        EXTERNAL,
        id="external-query-in-where",
    ),
    pytest.param(
        r"SELECT `EXTERNAL\x5fQUERY`('c', 'q')", EXTERNAL, id="external-query-with-an-escape"
    ),
    pytest.param("SELECT * FROM EXTERNAL_QUERY", EXTERNAL, id="external-query-as-a-bare-name"),
    # Models, table-valued and user-defined functions.
    pytest.param(
        "SELECT * FROM ML.PREDICT(MODEL marketplace.m, TABLE marketplace.orders)",
        MODELS,
        id="ml-predict",
    ),
    pytest.param(
        "SELECT ML.GENERATE_TEXT(MODEL marketplace.m, TABLE marketplace.orders)",
        MODELS,
        id="ml-generate-text",
    ),
    pytest.param("SELECT AI.GENERATE('hello')", MODELS, id="ai-generate"),
    pytest.param("SELECT ai.generate_bool('spam?')", MODELS, id="ai-generate-bool-lower-case"),
    pytest.param(
        "SELECT * FROM VECTOR_SEARCH(TABLE marketplace.emb, 'v', TABLE marketplace.q)",
        "VECTOR_SEARCH is not allowed",
        id="vector-search",
    ),
    pytest.param("SELECT * FROM marketplace.my_tvf(1)", TVF, id="table-valued-function"),
    pytest.param(
        "SELECT * FROM GAP_FILL(TABLE orders, ts_column => 'ts', bucket_width => INTERVAL 1 DAY)",
        TVF,
        id="built-in-table-valued-function",
    ),
    pytest.param("SELECT marketplace.my_udf(1)", UDF, id="persistent-udf"),
    pytest.param("SELECT `marketplace.my_udf`(1)", UDF, id="backticked-persistent-udf"),
    pytest.param("SELECT OBJ.GET_ACCESS_URL(ref, 'r') FROM orders", UDF, id="obj-signed-urls"),
    # Anything else that is not plain GoogleSQL text.
    pytest.param("SELECT * FROM orders WHERE id = @id", "Query parameters", id="parameter"),
    # Off unless the policy allows them.
    pytest.param(
        "SELECT * FROM orders FOR SYSTEM_TIME AS OF "
        "TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)",
        TIME_TRAVEL,
        id="time-travel",
    ),
    pytest.param(
        "SELECT * FROM orders FOR SYSTEM TIME AS OF TIMESTAMP '2026-01-01'",
        TIME_TRAVEL,
        id="time-travel-spelled-with-a-space",
    ),
    pytest.param(
        "SELECT * FROM (SELECT * FROM finance.ledger FOR SYSTEM_TIME AS OF '2026-01-01')",
        TIME_TRAVEL,
        id="time-travel-in-a-subquery",
    ),
    pytest.param("SELECT SESSION_USER() AS me", SESSION, id="session-user"),
    pytest.param(
        "SELECT * FROM orders WHERE seller = session_user()", SESSION, id="session-user-filter"
    ),
    pytest.param("SELECT @@project_id", "system variables", id="system-variable"),
    pytest.param("FROM orders |> WHERE total > 1", "Pipe syntax", id="pipe-syntax"),
    pytest.param(
        "#legacySQL\nSELECT * FROM [other:secret.t]", "Legacy SQL is not supported", id="legacy"
    ),
    pytest.param("", "The query is empty", id="empty"),
    pytest.param(" \n\t ", "The query is empty", id="whitespace"),
    pytest.param("-- only a comment", "no statement, only comments", id="only-a-comment"),
    pytest.param(";", "no statement", id="only-a-semicolon"),
    pytest.param("SELECT 'unterminated", "could not be parsed", id="unterminated-string"),
    pytest.param("SELEC 1", "could not be parsed", id="typo"),
    pytest.param("SELECT 1\x00; DROP TABLE x", "control character U+0000", id="nul-byte"),
    pytest.param("SELECT 1 -- x\u2028DROP TABLE x", "U+2028", id="unicode-line-separator"),
    pytest.param("SELECT '\u202e' AS x", "U+202E", id="bidi-override"),
    pytest.param("SELECT " + "(" * 300 + "1" + ")" * 300, "nested too deeply", id="deep"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_a_query_that_is_not_one_read_only_select_over_allowed_tables_is_refused(
    sql: str, reason: str
):
    assert reason in refusal(sql)


ACCEPTED = [
    pytest.param(
        """
        WITH recent AS (
          SELECT order_id, customer_id, total
          FROM marketplace.orders
          WHERE order_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 10 DAY)
        )
        SELECT c.country, COUNT(*) AS n, SUM(r.total) AS revenue
        FROM recent AS r
        JOIN `acme-analytics.marketplace.customers` AS c USING (customer_id)
        GROUP BY 1
        ORDER BY revenue DESC
        LIMIT 10;
        """,
        (CUSTOMERS, ORDERS),
        id="cte-join-group-by-1-trailing-semicolon",
    ),
    pytest.param(
        "SELECT TIMESTAMP_TRUNC(created_at, HOUR) AS hour, "
        "SAFE_DIVIDE(SUM(refunds), SUM(orders)) AS refund_rate FROM orders GROUP BY 1",
        (ORDERS,),
        id="timestamp-trunc-safe-divide-unqualified-table",
    ),
    pytest.param(
        "SELECT o.order_id, item.sku, pos FROM marketplace.orders AS o, "
        "UNNEST(o.items) AS item WITH OFFSET AS pos",
        (ORDERS,),
        id="unnest-an-array",
    ),
    pytest.param(
        "SELECT i FROM marketplace.orders AS o, o.items AS i",
        (ORDERS,),
        id="implicit-unnest-of-an-array-path",
    ),
    pytest.param(
        "SELECT customer_id, total, "
        "ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY total DESC) AS rank_in_customer, "
        "AVG(total) OVER w AS average, "
        "LAG(total) OVER (ORDER BY order_date ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS prev "
        "FROM orders WINDOW w AS (PARTITION BY customer_id) QUALIFY rank_in_customer = 1",
        (ORDERS,),
        id="window-functions-and-qualify",
    ),
    pytest.param(
        "SELECT * FROM `acme-analytics`.marketplace.orders", (ORDERS,), id="project-backticked"
    ),
    pytest.param(
        "SELECT * FROM `acme-analytics.marketplace.orders`", (ORDERS,), id="whole-name-backticked"
    ),
    pytest.param(
        "SELECT COUNT(*) FROM `marketplace.events_*` "
        "WHERE _TABLE_SUFFIX BETWEEN '20240101' AND '20240131'",
        ("acme-analytics.marketplace.events_*",),
        id="wildcard-table-inside",
    ),
    pytest.param(
        "SELECT table_name, column_name FROM marketplace.INFORMATION_SCHEMA.COLUMNS",
        ("acme-analytics.marketplace.INFORMATION_SCHEMA.COLUMNS",),
        id="information-schema-of-an-allowed-dataset",
    ),
    pytest.param(
        "SELECT * FROM `shared-data.reference.countries`",
        ("shared-data.reference.countries",),
        id="allowed-dataset-in-another-project",
    ),
    pytest.param(
        "WITH orders AS (SELECT 1 AS x) SELECT * FROM orders",
        (),
        id="cte-named-like-a-table-is-not-a-table",
    ),
    pytest.param(
        "WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a) SELECT * FROM b JOIN marketplace.a",
        ("acme-analytics.marketplace.a",),
        id="cte-chain-and-a-real-table-of-the-same-name",
    ),
    pytest.param(
        "WITH a AS (SELECT 1 AS x) SELECT * FROM a UNION ALL SELECT * FROM a",
        (),
        id="cte-used-on-both-sides-of-a-union",
    ),
    pytest.param(
        "SELECT * FROM (WITH s AS (SELECT 1 AS x) SELECT * FROM s), s",
        ("acme-analytics.marketplace.s",),
        id="cte-inside-a-subquery-is-not-visible-outside-it",
    ),
    pytest.param(
        "WITH t AS (SELECT * FROM t) SELECT * FROM t",
        ("acme-analytics.marketplace.t",),
        id="a-cte-body-reads-the-real-table-of-its-own-name",
    ),
    pytest.param(
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT * FROM r",
        (),
        id="recursive-cte",
    ),
    pytest.param(
        "SELECT * FROM orders LEFT JOIN finance.ledger l ON l.order_id = orders.order_id "
        "WHERE EXISTS (SELECT 1 FROM finance.ledger) "
        "AND customer_id IN (SELECT customer_id FROM customers)",
        (LEDGER, CUSTOMERS, ORDERS),
        id="joins-and-subqueries",
    ),
    pytest.param(
        "SELECT a FROM orders UNION ALL SELECT a FROM finance.ledger EXCEPT DISTINCT SELECT 1",
        (LEDGER, ORDERS),
        id="set-operations",
    ),
    pytest.param(
        "SELECT STRUCT(1 AS a) AS s, [1, 2][OFFSET(0)], ARRAY(SELECT x FROM UNNEST([1]) AS x), "
        "CASE WHEN total > 100 THEN 'big' END, IF(total IS NULL, 0, total), "
        "CAST(total AS STRING), SAFE_CAST(code AS INT64), EXTRACT(YEAR FROM order_date), "
        "JSON_VALUE(payload, '$.a'), REGEXP_CONTAINS(sku, r'^A'), "
        "STRING_AGG(sku, ',' ORDER BY sku LIMIT 3), APPROX_QUANTILES(total, 100)[OFFSET(50)], "
        "HLL_COUNT.MERGE(sketch), SAFE.PARSE_DATE('%Y', '2024'), NET.HOST(url), "
        "ST_GEOGPOINT(lon, lat), GENERATE_DATE_ARRAY('2024-01-01', '2024-02-01'), "
        "DATE '2024-01-01', b'bytes', '''triple''' FROM orders",
        (ORDERS,),
        id="built-in-functions-and-literals",
    ),
    pytest.param("SELECT * FROM orders TABLESAMPLE SYSTEM (10 PERCENT)", (ORDERS,), id="sampling"),
    pytest.param(
        "SELECT * FROM marketplace.orders AS o, `o`.`items` AS i, i.parts",
        (ORDERS,),
        id="array-paths-quoted-part-by-part",
    ),
    pytest.param(
        "SELECT * FROM marketplace.orders AS O, o.items",
        (ORDERS,),
        id="an-alias-matches-without-regard-to-case",
    ),
    pytest.param(
        "SELECT * FROM `acme-analytics`.`marketplace`.`orders`", (ORDERS,), id="every-part-quoted"
    ),
    pytest.param(
        "SELECT * FROM acme-analytics.marketplace.orders", (ORDERS,), id="unquoted-dashed-project"
    ),
    pytest.param(
        "SELECT table_name FROM `acme-analytics.marketplace.INFORMATION_SCHEMA.TABLES`",
        ("acme-analytics.marketplace.INFORMATION_SCHEMA.TABLES",),
        id="information-schema-in-one-pair-of-backticks",
    ),
    pytest.param(
        r"SELECT * FROM `marketplace\x2eorders`", (ORDERS,), id="an-escape-bigquery-reads-too"
    ),
    pytest.param(
        "SELECT * FROM (SELECT sku, quarter, sales FROM orders) "
        "PIVOT(SUM(sales) FOR quarter IN ('Q1', 'Q2'))",
        (ORDERS,),
        id="pivot",
    ),
    pytest.param(
        "SELECT * EXCEPT (email) REPLACE (LOWER(name) AS name) FROM customers GROUP BY ALL",
        (CUSTOMERS,),
        id="select-star-except-replace",
    ),
    pytest.param(
        "# BigQuery comment\nSELECT /* inline */ predict -- trailing\nFROM orders; -- done",
        (ORDERS,),
        id="comments-and-a-column-named-like-a-model-function",
    ),
    pytest.param("(SELECT 1)", (), id="parenthesised-select"),
    pytest.param("SELECT 1 -- ; DROP TABLE orders", (), id="a-statement-inside-a-comment"),
]


@pytest.mark.parametrize(("sql", "tables"), ACCEPTED)
def test_an_ordinary_analytics_query_is_accepted_with_the_tables_it_reads(
    sql: str, tables: tuple[str, ...]
):
    assert check_query(sql, POLICY) == CheckedQuery(sql=sql.strip(), tables=tables)


def test_the_sql_sent_on_is_the_callers_text_without_surrounding_whitespace():
    sql = "\n  SeLeCt  `order_id`  # kept as written\nFROM orders;\n\n"
    assert check_query(sql, POLICY).sql == sql.strip()


def test_a_refusal_says_what_is_wrong_and_how_to_fix_it():
    assert refusal("SELECT * FROM other.secret.t") == (
        "The query reads other.secret.t, which is outside the allowed datasets "
        "(finance, marketplace, shared-data.reference). "
        "Query only tables in: finance, marketplace, shared-data.reference."
    )
    assert refusal("DELETE FROM orders WHERE TRUE") == (
        "DELETE statements are not allowed: this tool only reads data. "
        "Write a SELECT (WITH ... SELECT is fine)."
    )
    assert refusal("SELECT 1; DROP TABLE orders") == (
        "Only one SELECT statement is allowed; found 2 statements (SELECT, DROP). "
        "Send a single SELECT (WITH ... SELECT is fine)."
    )


def test_a_refusal_is_a_value_error_so_callers_can_turn_it_into_a_tool_error():
    with pytest.raises(ValueError, match="DROP statements are not allowed"):
        check_query("DROP TABLE orders", POLICY)


def test_a_query_up_to_the_length_limit_is_checked_and_a_longer_one_refused():
    query = "SELECT 1 AS x FROM orders -- "
    longest = query + "x" * (MAX_QUERY_CHARS - len(query))
    assert check_query(longest, POLICY).tables == (ORDERS,)
    assert "is 20001 characters long; the limit is 20000" in refusal(longest + "x")


def test_a_policy_whose_default_dataset_is_not_allowed_is_rejected():
    with pytest.raises(ValueError, match="default dataset"):
        GuardPolicy(
            project="acme-analytics",
            default_dataset="staging",
            allowed_datasets=frozenset({"marketplace"}),
        )


def test_time_travel_and_session_user_are_accepted_when_the_policy_allows_them():
    sql = (
        "SELECT SESSION_USER() AS me, o.* FROM orders AS o FOR SYSTEM_TIME AS OF "
        "TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)"
    )
    for allowed in ({"allow_time_travel": True}, {"allow_session_user": True}):
        with pytest.raises(QueryRefusedError):
            check_query(sql, replace(POLICY, **allowed))
    both = replace(POLICY, allow_time_travel=True, allow_session_user=True)
    assert check_query(sql, both).tables == (ORDERS,)
