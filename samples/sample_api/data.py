"""Deterministic sample records, built on demand from (seed, kind, index).

Each record gets its own `random.Random` seeded from a 64-bit mix of the three, so any record can
be produced without generating the ones before it: a 200,000-customer API starts instantly and a
page costs only its own records. The same seed gives the same data on every machine and run.
"""
from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

DEFAULT_SEED = 42
COUNTS = {"customers": 500, "products": 200, "orders": 1000, "events": 1000, "tickets": 120}
ACTIVE_SHARE = 80  # percent of customers whose status is "active"

_MASK = (1 << 64) - 1
_SALT = {"customers": 1, "products": 2, "orders": 3, "events": 4, "tickets": 5, "status": 6}
_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)

FIRST = ("Ada", "Ben", "Chloe", "Dmitri", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko",
         "Liam", "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
         "Wen", "Xavier", "Yara", "Zoe")
LAST = ("Andersen", "Brown", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Huber", "Ivanova",
        "Jansen", "Kowalski", "Lopez", "Müller", "Nakamura", "O'Brien", "Petit", "Rossi", "Schmidt",
        "Tanaka", "Visser", "Weber", "Young")
DOMAINS = ("example.com", "example.org", "example.net")
TAGS = ("vip", "newsletter", "b2b", "churn-risk", "beta", "wholesale", "late-payer")
STREETS = {"GB": ("High Street", "Station Road", "Mill Lane"), "DE": ("Hauptstraße", "Bahnhofstraße"),
           "FR": ("Rue de la Paix", "Avenue Victor Hugo"), "NL": ("Kerkstraat", "Dorpsstraat"),
           "US": ("Main Street", "Oak Avenue", "Elm Street")}
CITIES = {"GB": ("London", "Leeds", "Bristol"), "DE": ("Berlin", "Hamburg", "Munich"),
          "FR": ("Paris", "Lyon", "Lille"), "NL": ("Amsterdam", "Utrecht", "Delft"),
          "US": ("Washington", "Chicago", "Denver")}
CATEGORIES = ("tools", "garden", "kitchen", "office", "toys", "outdoor")
ADJECTIVES = ("Compact", "Deluxe", "Eco", "Heavy-duty", "Mini", "Pro", "Smart", "Classic")
NOUNS = ("Drill", "Kettle", "Lamp", "Hose", "Stapler", "Backpack", "Blender", "Chair", "Puzzle")
CURRENCIES = ("EUR", "GBP", "USD")
EVENT_TYPES = ("login", "logout", "profile.updated", "order.placed", "order.refunded", "password.reset")
SUBJECTS = ("Cannot log in", "Refund not received", "Wrong item delivered", "Invoice address change",
            "App crashes on start", "Question about warranty")
COUNTRIES = tuple({"code": c, "name": n} for c, n in (
    ("AT", "Austria"), ("BE", "Belgium"), ("CA", "Canada"), ("CH", "Switzerland"), ("CZ", "Czechia"),
    ("DE", "Germany"), ("DK", "Denmark"), ("ES", "Spain"), ("FI", "Finland"), ("FR", "France"),
    ("GB", "United Kingdom"), ("IE", "Ireland"), ("IT", "Italy"), ("JP", "Japan"), ("NL", "Netherlands"),
    ("NO", "Norway"), ("PL", "Poland"), ("PT", "Portugal"), ("SE", "Sweden"), ("US", "United States")))


def _mix(seed: int, salt: int, index: int) -> int:
    """SplitMix64 finaliser: neighbouring indexes must not get correlated random streams."""
    z = (seed * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03 + index * 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(_mix(seed, _SALT[kind], index))


def _digits(rng: random.Random, n: int) -> str:
    return f"{rng.randrange(10 ** n):0{n}d}"


def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def _utc(rng: random.Random, span_days: int = 6 * 365) -> datetime:
    return _EPOCH + timedelta(seconds=rng.randrange(span_days * 86400))


def _zulu(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iban(country: str, bban: str) -> str:
    """Check digits per ISO 13616 (mod 97), so validators in the PII scanner accept the value."""
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _bban(rng: random.Random, country: str) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if country == "GB":
        return "".join(rng.choice(letters) for _ in range(4)) + _digits(rng, 14)
    if country == "NL":
        return "".join(rng.choice(letters) for _ in range(4)) + _digits(rng, 10)
    if country == "FR":  # bank(5) branch(5) account(11) + the French RIB key, valid too
        bank, branch, account = _digits(rng, 5), _digits(rng, 5), _digits(rng, 11)
        key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
        return f"{bank}{branch}{account}{key:02d}"
    return _digits(rng, 18)  # DE: bank code (8) + account (10)


def luhn_complete(partial: str) -> str:
    """Append the Luhn check digit, so card detectors that validate checksums fire on it."""
    total = 0
    for pos, ch in enumerate(reversed(partial)):
        d = int(ch) * (2 if pos % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return partial + str((10 - total % 10) % 10)


def _phone(rng: random.Random, country: str) -> str:
    """Numbers from ranges reserved for fiction, in the international or the US national form."""
    if country == "US":
        return f"({rng.choice(('202', '212', '312', '415'))}) 555-01{_digits(rng, 2)}"
    if country == "GB":
        return f"+44 20 7946 0{_digits(rng, 3)}"
    if country == "DE":
        return f"+49 30 23125 {_digits(rng, 3)}"
    if country == "FR":
        return f"+33 1 99 00 {_digits(rng, 2)} {_digits(rng, 2)}"
    return f"+31 20 {_digits(rng, 3)} {_digits(rng, 4)}"


def _postcode(rng: random.Random, country: str) -> str:
    if country == "GB":
        return f"{rng.choice(('SW', 'EC', 'LS', 'BS'))}{rng.randint(1, 9)} {rng.randint(1, 9)}" \
               f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    if country == "NL":
        return f"{rng.randint(1000, 9999)} {rng.choice('ABCDEFGHJK')}{rng.choice('ABCDEFGHJK')}"
    return _digits(rng, 5)


def _ip(rng: random.Random) -> str:
    """Documentation ranges only (RFC 5737 / RFC 3849): realistic shape, never a real host."""
    if rng.random() < 0.15:
        return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"
    return f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"


def _lookalikes(rng: random.Random) -> list[str]:
    """Digit-heavy text that is not PII, to measure a scanner's false positives."""
    order = f"ORD-{rng.randint(2021, 2024)}-{rng.randrange(1, 999999):06d}"
    day = _utc(rng).date().isoformat()
    version = f"v{rng.randint(1, 4)}.{rng.randint(0, 12)}.{rng.randint(0, 20)}"
    amount = f"{rng.randint(1000, 99999):,}.{rng.randrange(100):02d}"
    return [f"Order {order} was placed on {day}.", f"Refund of {amount} approved.",
            f"Customer uses app {version}."]


def _notes(rng: random.Random, email: str, phone: str, account: str) -> str:
    sentences = _lookalikes(rng)
    rng.shuffle(sentences)
    if rng.random() < 1 / 3:
        planted = rng.choice((f"Asked us to write to {email} instead.", f"Call back on {phone}.",
                              f"Refund should go to {account}."))
        sentences.insert(rng.randint(0, len(sentences)), planted)
    return " ".join(sentences)


def customer_status(index: int, seed: int = DEFAULT_SEED) -> str:
    """Cheap on its own so a status filter over 200,000 customers needs no full records."""
    return "active" if _mix(seed, _SALT["status"], index) % 100 < ACTIVE_SHARE else "inactive"


def customer(index: int, seed: int = DEFAULT_SEED) -> dict:
    rng = _rng(seed, "customers", index)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first}.{last.replace(chr(39), '')}{index}@{rng.choice(DOMAINS)}".lower().replace("ü", "ue")
    country = rng.choice(tuple(CITIES))
    phone = _phone(rng, country)
    bank_country = country if country != "US" else rng.choice(("GB", "DE", "FR", "NL"))
    account = iban(bank_country, _bban(rng, bank_country))
    offset = timezone(timedelta(minutes=rng.choice((0, 60, 120, -300, -480, 330, 540))))
    created = _utc(rng).astimezone(offset).replace(second=0)
    card_prefix = "4" + _digits(rng, 14) if rng.random() < 0.5 else f"5{rng.randint(1, 5)}" + _digits(rng, 13)
    return {
        "id": index, "full_name": f"{first} {last}", "email": email, "phone": phone,
        "address": {"street": f"{rng.randint(1, 250)} {rng.choice(STREETS[country])}", "city": rng.choice(CITIES[country]),
                    "postcode": _postcode(rng, country), "country": country},
        "created": created.isoformat(), "updated_at": _zulu(customer_updated(index)),
        "status": customer_status(index, seed),
        "tags": rng.sample(TAGS, rng.randint(0, 3)), "balance": _cents(rng.randrange(0, 5_000_000)),
        "iban": account, "card_number": luhn_complete(card_prefix), "last_ip": _ip(rng),
        "notes": _notes(rng, email, phone, account),
    }


def product(index: int, seed: int = DEFAULT_SEED) -> dict:
    rng = _rng(seed, "products", index)
    return {"sku": f"SKU-{index:05d}", "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            "price": rng.randrange(99, 50000) / 100, "category": rng.choice(CATEGORIES),
            "stock": rng.randint(0, 500), "updated_at": _zulu(_utc(rng))}


def order(index: int, seed: int = DEFAULT_SEED, customers: int = COUNTS["customers"],
          products: int = COUNTS["products"]) -> dict:
    """Lines reference real SKUs and the amount is their priced sum, so joins in demos add up."""
    rng = _rng(seed, "orders", index)
    picked = rng.sample(range(1, products + 1), min(rng.randint(1, 4), products))
    lines = [{"sku": f"SKU-{sku:05d}", "qty": rng.randint(1, 5)} for sku in picked]
    amount = sum((Decimal(str(product(sku, seed)["price"])) * line["qty"] for sku, line in zip(picked, lines)),
                 Decimal("0"))
    created = _EPOCH + timedelta(minutes=index * 17 + rng.randrange(17))  # grows with the id
    return {"order_id": f"ORD-{index:06d}", "customer_id": rng.randint(1, max(customers, 1)),
            "amount": f"{amount:.2f}", "currency": rng.choice(CURRENCIES), "created_at": _zulu(created),
            "lines": lines}


def event(index: int, seed: int = DEFAULT_SEED) -> dict:
    rng = _rng(seed, "events", index)
    at = _EPOCH + timedelta(seconds=index * 60 + rng.randrange(60))
    actor = f"{rng.choice(FIRST)}.{rng.randrange(1, 10000)}@{rng.choice(DOMAINS)}".lower()
    return {"event_id": index, "type": rng.choice(EVENT_TYPES), "at": _zulu(at),
            "payload": {"actor_email": actor,
                        "detail": {"resource": rng.choice(("customer", "order", "session")),
                                   "resource_id": rng.randint(1, 100000),
                                   "source": rng.choice(("web", "api", "batch"))}}}


def ticket(index: int, seed: int = DEFAULT_SEED) -> dict:
    rng = _rng(seed, "tickets", index)
    opened = date(2023, 1, 1) + timedelta(days=index // 3 + rng.randrange(3))
    return {"ticket_id": index, "subject": rng.choice(SUBJECTS),
            "reporter_email": f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(DOMAINS)}"
                              .lower().replace("'", "").replace("ü", "ue"),
            "opened": opened.isoformat()}


# `updated_at` of a customer nobody changed: one minute apart in id order, so the customers updated
# since a moment are a range of ids (plus those changed later: `ApiConfig.changes`)
UPDATED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def customer_updated(index: int) -> datetime:
    return UPDATED_EPOCH + timedelta(minutes=index)


def first_updated_since(since: datetime) -> int:
    """The lowest id whose unchanged `updated_at` is at or after `since`."""
    minutes = (since - UPDATED_EPOCH) / timedelta(minutes=1)
    whole = int(minutes)
    return max(1, whole + (1 if minutes > whole else 0))


class Joined:
    """A few ids, then a range: what `updated_since` lists, sliced without building the whole list."""

    def __init__(self, head: tuple[int, ...], tail: range):
        self.head, self.tail = head, tail

    def __len__(self) -> int:
        return len(self.head) + len(self.tail)

    def __getitem__(self, part: slice) -> list[int]:
        start, stop, _ = part.indices(len(self))
        split = len(self.head)
        return list(self.head[start:min(stop, split)]) + list(self.tail[max(start - split, 0):max(stop - split, 0)])


@lru_cache(maxsize=16)
def customer_ids(count: int, seed: int = DEFAULT_SEED, status: str | None = None) -> tuple[int, ...] | range:
    """The ids a (possibly status-filtered) listing walks; cached since every page needs them."""
    if status is None:
        return range(1, count + 1)
    return tuple(i for i in range(1, count + 1) if customer_status(i, seed) == status)


def customers_at(ids: tuple[int, ...] | range, seed: int = DEFAULT_SEED) -> list[dict]:
    return [customer(i, seed) for i in ids]


def window(count: int, start: int, limit: int) -> range:
    """1-based ids of the records after the first `start`, at most `limit` of them."""
    return range(start + 1, min(start + limit, count) + 1)
