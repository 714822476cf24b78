"""The sample marketplace: a seeded generator and a loader for any BigQuery client.

`generate(today, seed)` makes the same rows for the same `today` and `seed`, covering the 60
whole days before `today` (UTC): users, categories, posts (listings, soft-deleted through
`deleted_at`), chats between buyers and sellers about a post, and transactions. The skew is
deliberate: category popularity follows a Zipf law (the first one or two categories dwarf the
rest), fewer posts on Saturdays and Sundays, evening peaks, a slow growth over the period, a
few power sellers. `load` writes the rows with streaming inserts, which the emulator answers
quickly; `ensure_seeded` is what the emulator runs at start.
"""

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate, islice
from typing import Any

from google.api_core.exceptions import NotFound
from google.cloud import bigquery

__all__ = [
    "DAYS",
    "DEFAULT_SEED",
    "SCHEMAS",
    "TABLE_DESCRIPTIONS",
    "Rows",
    "SeedError",
    "ensure_seeded",
    "generate",
    "load",
]

Rows = dict[str, list[dict[str, Any]]]

DEFAULT_SEED = 7
DAYS = 60
USERS = 1200
POSTS_PER_DAY = 58
# Monday first, as `date.weekday()` counts; weekends are quieter.
WEEKDAY_FACTOR = (1.05, 1.0, 1.0, 1.05, 0.95, 0.62, 0.55)
# Relative activity by hour of day (UTC): quiet nights, a lunch bump, an evening peak.
HOUR_WEIGHTS = (
    *(1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.2, 2.8, 3.0, 3.2),
    *(3.6, 3.4, 3.0, 3.0, 3.2, 3.6, 4.4, 5.2, 5.6, 5.0, 3.6, 2.0),
)
ZIPF_EXPONENT = 1.07
_HOUR_CUMULATIVE = list(accumulate(HOUR_WEIGHTS))
CENT = Decimal("0.01")

# (name, vertical, median asking price in euros, items), most popular first.
CATEGORIES: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("Women's clothing", "Fashion", 15, ("Dress", "Denim jacket", "Wool coat", "Jumper", "Skirt")),
    ("Furniture", "Home", 60, ("Sofa", "Oak table", "Armchair", "Wardrobe", "Bookshelf")),
    ("Phones", "Electronics", 140, ("iPhone 13", "Galaxy S22", "Pixel 7", "Fairphone 4")),
    ("Kids & baby", "Family", 12, ("Pushchair", "Baby carrier", "Cot", "Kids' raincoat")),
    ("Men's clothing", "Fashion", 18, ("Parka", "Suit", "Chinos", "Hoodie", "Leather jacket")),
    ("Shoes", "Fashion", 25, ("Trainers", "Ankle boots", "Hiking boots", "Loafers")),
    ("Home appliances", "Home", 80, ("Washing machine", "Fridge", "Microwave", "Vacuum")),
    ("Video games", "Electronics", 35, ("PS5 controller", "Switch Lite", "Zelda game", "Xbox")),
    ("Books & comics", "Leisure", 6, ("Cookbook", "Comic set", "Novel lot", "Atlas")),
    ("Bicycles", "Leisure", 160, ("City bike", "Road bike", "Kids' bike", "E-bike")),
    ("Computers", "Electronics", 280, ("MacBook Air", "ThinkPad", "Gaming PC", "Monitor")),
    ("Decoration", "Home", 20, ("Mirror", "Floor lamp", "Rug", "Vase", "Poster frame")),
    ("Toys & games", "Family", 10, ("Lego set", "Board game", "Doll house", "Puzzle")),
    ("Sports", "Leisure", 30, ("Tennis racket", "Yoga mat", "Ski boots", "Dumbbells")),
    ("DIY & tools", "Home", 40, ("Cordless drill", "Tool box", "Ladder", "Circular saw")),
    ("Garden", "Home", 35, ("Lawn mower", "Garden chairs", "Barbecue", "Planters")),
    ("Musical instruments", "Leisure", 120, ("Acoustic guitar", "Keyboard", "Violin")),
    ("Car parts", "Vehicles", 50, ("Winter tyres", "Roof box", "Child car seat")),
    ("Collectibles", "Leisure", 25, ("Vinyl records", "Stamp album", "Old coins")),
    ("Jewellery & watches", "Fashion", 45, ("Silver ring", "Watch", "Necklace")),
)
CONDITIONS = ("like new", "good condition", "barely used", "needs a clean", "as is", "new")
# (city, country, relative number of users)
CITIES = (
    *(("Paris", "FR", 9), ("Berlin", "DE", 8), ("Madrid", "ES", 7), ("Rome", "IT", 6)),
    *(("Amsterdam", "NL", 4), ("Lyon", "FR", 4), ("Munich", "DE", 4), ("Barcelona", "ES", 5)),
    *(("Milan", "IT", 4), ("Brussels", "BE", 3), ("Lisbon", "PT", 3), ("Vienna", "AT", 3)),
    *(("Marseille", "FR", 3), ("Hamburg", "DE", 3), ("Valencia", "ES", 2), ("Dublin", "IE", 2)),
)
FIRST_NAMES = tuple(
    "Marie Lukas Sofia Hugo Giulia Daan Ana Leon Emma Mateo "
    "Chloe Felix Lucia Noah Ines Jonas Sara Louis Eva Marco".split()
)
LAST_NAMES = tuple(
    "Martin Muller Garcia Rossi Jansen Silva Schmidt Bernard Lopez "
    "Romano Peeters Murphy Gruber Dubois Fernandez Weber Costa Bakker".split()
)


class SeedError(RuntimeError):
    """The warehouse refused the sample rows."""


def _field(name: str, kind: str, description: str, *, required: bool = True) -> Any:
    mode = "REQUIRED" if required else "NULLABLE"
    return bigquery.SchemaField(name, kind, mode=mode, description=description)


SCHEMAS: dict[str, list[bigquery.SchemaField]] = {
    "categories": [
        _field("category_id", "INT64", "Category key."),
        _field("name", "STRING", "Category name, e.g. 'Furniture'."),
        _field("vertical", "STRING", "Group of categories, e.g. 'Home'."),
    ],
    "users": [
        _field("user_id", "INT64", "User key; buyers and sellers are both users."),
        _field("username", "STRING", "Public handle."),
        _field("city", "STRING", "City the user lives in."),
        _field("country", "STRING", "ISO 3166-1 alpha-2 country code."),
        _field("is_professional", "BOOL", "A business seller rather than a private person."),
        _field("signed_up_at", "TIMESTAMP", "When the account was created (UTC)."),
    ],
    "posts": [
        _field("post_id", "INT64", "Listing key, in order of creation."),
        _field("seller_id", "INT64", "users.user_id of the seller."),
        _field("category_id", "INT64", "categories.category_id."),
        _field("title", "STRING", "Listing title."),
        _field("price_eur", "NUMERIC", "Asking price in euros."),
        _field("created_at", "TIMESTAMP", "When the listing was published (UTC)."),
        _field("status", "STRING", "active, sold or expired."),
        _field(
            "deleted_at",
            "TIMESTAMP",
            "Soft delete: when the seller removed the listing; NULL while it is visible.",
            required=False,
        ),
    ],
    "chats": [
        _field("chat_id", "INT64", "Conversation key."),
        _field("post_id", "INT64", "posts.post_id the conversation is about."),
        _field("buyer_id", "INT64", "users.user_id of the interested buyer."),
        _field("seller_id", "INT64", "users.user_id of the seller (the post's seller)."),
        _field("started_at", "TIMESTAMP", "First message (UTC)."),
        _field("messages", "INT64", "Number of messages exchanged."),
    ],
    "transactions": [
        _field("transaction_id", "INT64", "Transaction key."),
        _field("post_id", "INT64", "posts.post_id of the item sold."),
        _field("buyer_id", "INT64", "users.user_id of the buyer."),
        _field("seller_id", "INT64", "users.user_id of the seller."),
        _field("amount_eur", "NUMERIC", "Price paid in euros (often below the asking price)."),
        _field("fee_eur", "NUMERIC", "The marketplace's commission in euros."),
        _field("created_at", "TIMESTAMP", "When the buyer paid (UTC)."),
        _field("status", "STRING", "completed or refunded."),
    ],
}
TABLE_DESCRIPTIONS = {
    "categories": "Listing categories.",
    "users": "Marketplace accounts; the same user can buy and sell.",
    "posts": "Listings (posts) of items for sale. Soft-deleted rows have deleted_at set.",
    "chats": "Conversations between a buyer and the seller about one post.",
    "transactions": "Payments for posts: one per sale, refunded ones included.",
}


def _zipf_weights(count: int, exponent: float) -> list[float]:
    return [1 / (rank**exponent) for rank in range(1, count + 1)]


def _money(value: float) -> Decimal:
    """Prices as people write them: whole euros above 20, halves below."""
    step = Decimal(1) if value >= 20 else Decimal("0.5")
    return ((Decimal(str(value)) / step).quantize(Decimal(1), ROUND_HALF_UP) * step).quantize(CENT)


def _moment(rng: random.Random, day: date) -> datetime:
    hour = rng.choices(range(24), cum_weights=_HOUR_CUMULATIVE)[0]
    start = datetime.combine(day, time(hour), tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange(3600))


def _later(moment: datetime, hours: float) -> datetime:
    """`hours` after `moment`, to the second."""
    return moment + timedelta(seconds=round(hours * 3600))


def _users(rng: random.Random, first_day: date) -> list[dict[str, Any]]:
    users = []
    city_weights = [city[2] for city in CITIES]
    for user_id in range(1, USERS + 1):
        city, country, _ = rng.choices(CITIES, city_weights)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # One account in ten is new during the period; the others are up to three years old.
        if rng.random() < 0.1:
            signed_up = _moment(rng, first_day + timedelta(days=rng.randrange(DAYS)))
        else:
            signed_up = _moment(rng, first_day - timedelta(days=rng.randrange(1, 3 * 365)))
        users.append(
            {
                "user_id": user_id,
                "username": f"{first}.{last}{rng.randrange(100)}".lower(),
                "city": city,
                "country": country,
                "is_professional": rng.random() < 0.04,
                "signed_up_at": signed_up,
            }
        )
    return users


class _People:
    """Weighted picks of sellers and buyers who had an account at the time."""

    def __init__(self, rng: random.Random, users: list[dict[str, Any]]) -> None:
        self._rng = rng
        self._users = users
        order = list(range(len(users)))
        rng.shuffle(order)
        # A few power sellers (professionals above all) list most items; buyers are flatter.
        seller_weights = [0.0] * len(users)
        for rank, index in enumerate(order, start=1):
            boost = 8.0 if users[index]["is_professional"] else 1.0
            seller_weights[index] = boost / rank**0.8
        rng.shuffle(order)
        buyer_weights = [0.0] * len(users)
        for rank, index in enumerate(order, start=1):
            buyer_weights[index] = 1 / rank**0.5
        self._sellers = list(accumulate(seller_weights))
        self._buyers = list(accumulate(buyer_weights))
        self._oldest = sorted(users, key=lambda user: user["signed_up_at"])[:2]

    def _pick(self, cumulative: list[float], at: datetime, exclude: int | None) -> int:
        for _ in range(20):
            user = self._rng.choices(self._users, cum_weights=cumulative)[0]
            if user["signed_up_at"] <= at and user["user_id"] != exclude:
                return int(user["user_id"])
        return next(int(user["user_id"]) for user in self._oldest if user["user_id"] != exclude)

    def seller(self, at: datetime) -> int:
        return self._pick(self._sellers, at, None)

    def buyer(self, at: datetime, seller_id: int) -> int:
        return self._pick(self._buyers, at, seller_id)


def generate(today: date, seed: int = DEFAULT_SEED) -> Rows:
    """The sample marketplace for the `DAYS` whole days before `today`; same inputs, same rows."""
    rng = random.Random(f"switchboard-marketplace/{seed}")
    first_day = today - timedelta(days=DAYS)
    end = datetime.combine(today, time(), tzinfo=UTC)
    categories = [
        {"category_id": number, "name": name, "vertical": vertical}
        for number, (name, vertical, _, _) in enumerate(CATEGORIES, start=1)
    ]
    # Popularity is Zipf-like over ranks: the first two categories lead whatever the seed,
    # the order of the long tail varies with it.
    popularity = _zipf_weights(len(CATEGORIES), ZIPF_EXPONENT)
    tail = list(range(2, len(CATEGORIES)))
    rng.shuffle(tail)
    ranked = [0, 1, *tail]
    weights = [0.0] * len(CATEGORIES)
    for rank, index in enumerate(ranked):
        weights[index] = popularity[rank]
    category_cumulative = list(accumulate(weights))

    users = _users(rng, first_day)
    people = _People(rng, users)
    drafts: list[dict[str, Any]] = []
    for offset in range(DAYS):
        day = first_day + timedelta(days=offset)
        growth = 0.9 + 0.2 * offset / (DAYS - 1)
        expected = POSTS_PER_DAY * WEEKDAY_FACTOR[day.weekday()] * growth
        for _ in range(max(0, round(rng.gauss(expected, expected * 0.08)))):
            index = rng.choices(range(len(CATEGORIES)), cum_weights=category_cumulative)[0]
            _, _, median_price, items = CATEGORIES[index]
            created = _moment(rng, day)
            drafts.append(
                {
                    "seller_id": people.seller(created),
                    "category_id": index + 1,
                    "title": f"{rng.choice(items)}, {rng.choice(CONDITIONS)}",
                    "price_eur": _money(median_price * rng.lognormvariate(0, 0.6)),
                    "created_at": created,
                }
            )
    drafts.sort(key=lambda post: post["created_at"])

    posts: list[dict[str, Any]] = []
    chats: list[dict[str, Any]] = []
    transactions: list[dict[str, Any]] = []
    for post_id, draft in enumerate(drafts, start=1):
        post = {"post_id": post_id, **draft, "status": "active", "deleted_at": None}
        created, seller_id = post["created_at"], post["seller_id"]
        post_chats = []
        for _ in range(min(int(rng.expovariate(1 / 1.6)), 12)):
            started = _later(created, rng.expovariate(1 / 30))
            if started >= end:
                continue
            buyer_id = people.buyer(started, seller_id)
            messages = 1 + min(int(rng.expovariate(1 / 5)), 59)
            post_chats.append(
                {
                    "chat_id": 0,  # numbered once the post's fate is known
                    "post_id": post_id,
                    "buyer_id": buyer_id,
                    "seller_id": seller_id,
                    "started_at": started,
                    "messages": messages,
                }
            )
        sale = None
        if post_chats and rng.random() < 1 - 0.7 ** len(post_chats):
            chat = rng.choice(post_chats)
            paid = _later(chat["started_at"], rng.expovariate(1 / 20))
            if paid < end:
                discount = 1.0 if rng.random() < 0.55 else rng.uniform(0.75, 0.98)
                amount = _money(float(post["price_eur"]) * discount)
                sale = {
                    "transaction_id": len(transactions) + 1,
                    "post_id": post_id,
                    "buyer_id": chat["buyer_id"],
                    "seller_id": seller_id,
                    "amount_eur": amount,
                    "fee_eur": (amount * Decimal("0.05") + Decimal("0.70")).quantize(CENT),
                    "created_at": paid,
                    "status": "refunded" if rng.random() < 0.06 else "completed",
                }
                transactions.append(sale)
        if sale is not None and sale["status"] == "completed":
            post["status"] = "sold"
        else:
            if created + timedelta(days=30) < end and rng.random() < 0.6:
                post["status"] = "expired"
            if sale is None and rng.random() < 0.06:
                deleted = _later(created, rng.uniform(2, 20 * 24))
                if deleted < end:
                    post["deleted_at"] = deleted
                    post_chats = [chat for chat in post_chats if chat["started_at"] < deleted]
        for number, chat in enumerate(post_chats, start=len(chats) + 1):
            chat["chat_id"] = number
        chats.extend(post_chats)
        posts.append(post)
    return {
        "categories": categories,
        "users": users,
        "posts": posts,
        "chats": chats,
        "transactions": transactions,
    }


def _batches(rows: Sequence[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def load(
    client: bigquery.Client, dataset: str, rows: Mapping[str, Sequence[Mapping[str, Any]]]
) -> None:
    """Create `dataset` when missing, then replace each table in `rows` with those rows.

    `dataset` is `name` (in the client's project) or `project.name`. Streaming inserts: fine
    for the emulator; on real BigQuery they are billed and block DML on the table for a while.
    """
    reference = bigquery.DatasetReference.from_string(dataset, default_project=client.project)
    client.create_dataset(reference, exists_ok=True)
    for name, table_rows in rows.items():
        table = bigquery.Table(reference.table(name), schema=SCHEMAS[name])
        table.description = TABLE_DESCRIPTIONS[name]
        client.delete_table(table, not_found_ok=True)
        table = client.create_table(table)
        for batch in _batches(table_rows, 5000):
            errors = client.insert_rows(table, batch)
            if errors:
                raise SeedError(f"{name}: {len(errors)} rows refused, first: {errors[0]}")


def ensure_seeded(
    client: bigquery.Client, dataset: str, *, today: date, seed: int = DEFAULT_SEED
) -> bool:
    """Seed `dataset` unless it already holds this `today`'s and `seed`'s sample; True if it did.

    A dataset seeded on an earlier day is dropped and made again, so that "the last 60 days"
    always end yesterday. The labels that record what was seeded are written last: a start
    cut short by a crash seeds again next time.
    """
    reference = bigquery.DatasetReference.from_string(dataset, default_project=client.project)
    labels = {"seeded_for": today.isoformat(), "seed": str(seed)}
    try:
        existing = client.get_dataset(reference)
    except NotFound:
        existing = None
    if existing is not None:
        tables = {table.table_id for table in client.list_tables(reference)}
        if existing.labels == labels and tables >= SCHEMAS.keys():
            return False
        client.delete_dataset(reference, delete_contents=True)
    created = bigquery.Dataset(reference)
    created.description = "Sample marketplace, generated by mcp_servers.bigquery.seed."
    created = client.create_dataset(created)
    load(client, dataset, generate(today, seed))
    created.labels = labels
    client.update_dataset(created, ["labels"])
    return True
