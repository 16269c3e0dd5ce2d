"""The fuzz tier: hostile records, interleaved with valid requests, through the real service.

`generate(seed, count)` makes a reproducible list of records: valid requests (which must
complete) and hostile ones (each of which must yield exactly one dead letter): random bytes,
deep nesting, numbers of thousands of digits, NaN, values near 1 MiB, text that is not UTF-8 or
holds lone surrogates, odd unicode, random field types, valid envelopes with hostile fields,
odd headers (null and non-UTF-8 values, repeated names, a `reply_to` aimed at the service's own
topics, credential-looking headers), odd keys, and, with `AUTH_MODE=jwt`, bad tokens. Hostile
cancels go to the cancel topic beside them.

`run(...)` sends them on the same partitions, in order, and checks the outcome: every valid
request completed, one dead letter per hostile record (counted by the original's partition and
offset), none for a valid one, no credential in any dead letter, no task left active, the
service still running. Used by tests/e2e/test_fuzz.py (a few thousand records) and
`python -m benchmarks.fuzz` (as many as asked, with figures).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import string
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.harness import ServiceProcess, Topics

Header = tuple[str, bytes | None]

CREDENTIAL = "FUZZ-CREDENTIAL-never-copied"
MAX_RECORD_BYTES = 1_000_000  # under Kafka's default 1 MiB message limit, headers included
VALID_MODELS: dict[str, dict[str, Any]] = {
    "cogvideox-flash": {},
    "viduq1-text": {"style": "anime"},
    "wanx2.1-t2v-turbo": {"size": "832*480"},
}
ODD_TEXT = [
    "一只可爱的小猫咪在草地上玩耍",
    "🐈‍⬛🎬✨",
    "\u202eevil\u202c",  # right-to-left override
    "zero\u200bwidth\u2060joiner",
    "e\u0301\u0301\u0301",  # stacked combining marks
    "\u0000nul",
    "line\nbreak\u2028separator",
    "\ufeffbom",
    "𝕱𝖚𝖟𝖟",
]

KEY_TEXT = [t for t in ODD_TEXT if "\x00" not in t]  # MongoDB takes no NUL in a key


@dataclass
class FuzzRecord:
    kind: str
    value: bytes | None
    key: bytes | None = None
    headers: list[Header] = field(default_factory=list)
    request_id: str | None = None  # valid records: the request that must complete
    partition: int = 0
    offset: int = -1  # known once sent

    @property
    def valid(self) -> bool:
        return self.kind == "valid"

    @property
    def size(self) -> int:
        headers = sum(len(k) + len(v or b"") for k, v in self.headers)
        return len(self.value or b"") + len(self.key or b"") + headers


class Tokens:
    """Bearer tokens for `AUTH_MODE=jwt` (HS256 with `secret`), good and bad."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def good(self, user: str = "fuzz-user") -> bytes:
        claims = {"sub": user, "tenant_id": "fuzz", "exp": int(time.time()) + 3600}
        return b"Bearer " + jwt.encode(claims, self.secret, algorithm="HS256").encode()

    def bad(self, rng: random.Random) -> list[Header]:
        now = int(time.time())
        choices: list[list[Header]] = [
            [],
            [("authorization", None)],
            [("authorization", b"Bearer \xff\xfe\xfd")],
            [("authorization", b"Basic " + base64.b64encode(b"user:" + CREDENTIAL.encode()))],
            [("authorization", b"Bearer " + _b64(rng, 30) + b"." + _b64(rng, 60) + b"." + b"x")],
            [("authorization", b"Bearer " + b"A" * 20_000)],
            [("authorization", self._token(rng, {"sub": "x", "exp": now - 10}))],
            [("authorization", self._token(rng, {"exp": now + 600}))],  # no sub
            [("authorization", self._token(rng, {"sub": 7, "exp": now + 600}))],
            [("authorization", self._token(rng, {"sub": "x", "exp": now + 600, "aud": "shop"}))],
            [("authorization", self._token(rng, {"sub": "x", "exp": now + 600}, key="wrong"))],
            [("authorization", self._token(rng, {"sub": "x" * 300, "exp": now + 600}))],
            [
                ("authorization", self._token(rng, {"sub": "x", "exp": now + 600}, alg="none")),
            ],
            [("Authorization", self.good()), ("authorization", self.good())],
        ]
        return rng.choice(choices)

    def _token(
        self, rng: random.Random, claims: dict[str, Any], key: str = "", alg: str = "HS256"
    ) -> bytes:
        if alg == "none":
            return b"Bearer " + jwt.encode(claims, "", algorithm="none").encode()
        secret = (key * 8) if key else self.secret
        return b"Bearer " + jwt.encode(claims, secret, algorithm=alg).encode()


def _b64(rng: random.Random, n: int) -> bytes:
    return base64.urlsafe_b64encode(rng.randbytes(n)).rstrip(b"=")


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    """Sizes spread over orders of magnitude, most of them small."""
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", errors="surrogatepass")


def _nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


class Generator:
    """Reproducible records from one seed."""

    def __init__(self, seed: int, topics: Topics, tokens: Tokens | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.topics = topics
        self.tokens = tokens
        self.count = 0

    # --- pieces -------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.seed}-{self.count}"

    def _valid_body(self, request_id: str) -> dict[str, Any]:
        rng = self.rng
        model = rng.choice(sorted(VALID_MODELS))
        prompt = f"{rng.choice(ODD_TEXT)} [{request_id}]"
        body: dict[str, Any] = {
            "request_id": request_id,
            "model": model,
            "parameters": {"prompt": prompt, **VALID_MODELS[model]},
        }
        if rng.random() < 0.5:
            body["metadata"] = {
                rng.choice(KEY_TEXT): rng.choice(ODD_TEXT),
                "$where": {"a.b": [1, 2.5, None, True]},
                "deep": json.loads(_nested(rng.randint(1, 30))),
                "big": rng.choice([2**63 - 1, -(2**63), 10**15, 0, 1.5e308]),
            }
        if rng.random() < 0.2:
            body["timeout_s"] = rng.choice([60, 86400, 3600])
        if rng.random() < 0.2:
            body["is_async"] = rng.choice([True, "yes", None])  # ignored
        return body

    def _odd_headers(self) -> list[Header]:
        rng = self.rng
        headers: list[Header] = []
        for _ in range(rng.choice([0, 0, 1, 2, 5, 40])):
            name = rng.choice(
                ["trace", "x-odd", "content-type", "Trace", "ключ", "x" * 300, "", "a b"]
            )
            value: bytes | None = rng.choice(
                [
                    None,
                    b"",
                    b"\xff\xfe",
                    rng.randbytes(rng.randint(1, 64)),
                    rng.choice(ODD_TEXT).encode(),
                    b"x" * rng.choice([1, 1000, 10_000]),
                ]
            )
            headers.append((name, value))
        if rng.random() < 0.1:
            headers.append(("reply_to", rng.choice(list(self._own_topics())).encode()))
        if rng.random() < 0.2:
            name = rng.choice(
                ["cookie", "X-Api-Key", "x-auth-token", "client_secret", "Set-Cookie"]
            )
            headers.append((name, CREDENTIAL.encode()))
        return headers

    def _own_topics(self) -> set[str]:
        t = self.topics
        return {t.requests, t.cancel, t.status, t.completed, t.dlq}

    def _key(self, request_id: str | None) -> bytes | None:
        rng = self.rng
        return rng.choice(
            [
                request_id.encode() if request_id else None,
                None,
                rng.randbytes(rng.randint(1, 32)),
                b"\xff" * 10,
                rng.choice(ODD_TEXT).encode(),
            ]
        )

    def _auth(self, hostile: bool) -> list[Header]:
        if self.tokens is None:
            return []
        if hostile and self.rng.random() < 0.5:
            return self.tokens.bad(self.rng)
        return [("authorization", self.tokens.good())]

    # --- records ------------------------------------------------------------------------------

    def valid(self) -> FuzzRecord:
        request_id = self._id("v")
        headers = self._odd_headers() + self._auth(hostile=False)
        self.rng.shuffle(headers)
        return FuzzRecord(
            "valid",
            _dumps(self._valid_body(request_id)),
            self._key(request_id),
            headers,
            request_id=request_id,
        )

    def hostile(self, big: bool = False) -> FuzzRecord:
        rng = self.rng
        kind, make = ("oversized", Generator._oversized) if big else rng.choice(HOSTILE)
        value = make(self)[: MAX_RECORD_BYTES - 2000]  # cut JSON stays hostile: unreadable
        headers = self._odd_headers() + self._auth(hostile=True)
        rng.shuffle(headers)
        record = FuzzRecord(kind, value, self._key(self._id("k")), headers)
        while record.size > MAX_RECORD_BYTES and record.headers:
            record.headers.pop()
        return record

    def cancel(self) -> FuzzRecord:
        """A hostile cancel (its request_id never names a valid request)."""
        rng = self.rng
        value = rng.choice(
            [
                rng.randbytes(rng.randint(0, 256)),
                b"[" * 50_000,
                _dumps({"request_id": self._id("h"), "reason": rng.choice(ODD_TEXT)}),
                _dumps({"request_id": 12}),
                _dumps({"request_id": self._id("h"), "reason": "r" * 5000}),
                b'{"request_id": "x", "reason": "\\ud800"}',
                b'{"request_id": "' + b"9" * 5000 + b'"}',
            ]
        )
        return FuzzRecord("cancel", value, self._key(None), self._odd_headers() + self._auth(True))

    # --- hostile values -----------------------------------------------------------------------

    def _envelope(self) -> dict[str, Any]:
        """A valid request, for hostile changes (its request_id is never a valid one's)."""
        return self._valid_body(self._id("h"))

    def _random_bytes(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, 4096))

    def _printable_noise(self) -> bytes:
        rng = self.rng
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 512))).encode()

    def _deep_open(self) -> bytes:
        rng = self.rng
        return rng.choice([b"[", b'{"a":', b'{"metadata":[']) * _log_uniform(rng, 1000, 100_000)

    def _with_raw(self, body: dict[str, Any], place: list[str], raw: str) -> bytes:
        """`body` as JSON with the raw JSON text `raw` at `place` (a path of keys)."""
        target = body
        for name in place[:-1]:
            target = target.setdefault(name, {})
        target[place[-1]] = "__RAW__"
        return _dumps(body).replace(b'"__RAW__"', raw.encode(), 1)

    def _deep_valid(self) -> bytes:
        # A valid document nested deeper than the service takes.
        place = self.rng.choice([["metadata"], ["parameters"], ["metadata", "x"]])
        return self._with_raw(self._envelope(), place, _nested(self.rng.randint(33, 900)))

    def _huge_number(self) -> bytes:
        rng = self.rng
        number = rng.choice(["9" * _log_uniform(rng, 4301, 200_000), "1e999", "-1e400"])
        place = rng.choice([["timeout_s"], ["metadata", "n"], ["parameters", "seed"]])
        return self._with_raw(self._envelope(), place, number)

    def _constants(self) -> bytes:
        constant = self.rng.choice(["NaN", "Infinity", "-Infinity"])
        place = self.rng.choice([["timeout_s"], ["metadata", "n"]])
        return self._with_raw(self._envelope(), place, constant)

    def _not_object(self) -> bytes:
        rng = self.rng
        return _dumps(rng.choice([[], [self._envelope()], "request", 42, 1.5, None, True, ""]))

    def _bad_utf8(self) -> bytes:
        rng = self.rng
        body = _dumps(self._envelope())
        position = body.index(b'"prompt": "') + 11
        bad = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        return body[:position] + bad + body[position:]

    def _other_encoding(self) -> bytes:
        text = json.dumps(self._envelope())
        return text.encode(self.rng.choice(["utf-16", "utf-32", "utf-16-le"]))

    def _lone_surrogate(self) -> bytes:
        body = self._envelope()
        where = self.rng.choice(["user_id", "tenant_id", "metadata", "prompt", "model"])
        surrogate = self.rng.choice(["\ud800", "\udfff", "a\udbffz"])
        if where == "metadata":
            body["metadata"] = {surrogate: 1}
        elif where == "prompt":
            body["parameters"]["prompt"] = surrogate
        else:
            body[where] = surrogate
        return json.dumps(body).encode()  # ASCII: the surrogate travels as an escape

    def _wrong_types(self) -> bytes:
        rng = self.rng
        body = self._envelope()
        wrong: dict[str, list[Any]] = {
            "request_id": [12, None, [], {}, True, 1.5],
            "model": [None, 7, [], {"m": 1}, True],
            "parameters": [None, [], "prompt", 3, True],
            "timeout_s": [[], {}, "soon", "12a", True, 120.5, "NaN"],
            "metadata": [[], "m", 3, True],
            "user_id": [1, [], {}, True],
            "tenant_id": [1, [], {}, False],
            "reply_topic": [5, [], {}, True, ""],
            "provider": [1, [], {}],
        }
        name = rng.choice(sorted(wrong))
        body[name] = rng.choice(wrong[name])
        return _dumps(body)

    def _missing(self) -> bytes:
        body = self._envelope()
        del body[self.rng.choice(["request_id", "model", "parameters"])]
        return _dumps(body)

    def _hostile_fields(self) -> bytes:
        rng = self.rng
        body = self._envelope()
        own = sorted(self._own_topics())
        changes: list[tuple[str, Callable[[], Any]]] = [
            ("user_id", lambda: "u" * rng.randint(257, 50_000)),
            ("tenant_id", lambda: "t" * rng.randint(257, 5_000)),
            ("model", lambda: "m" * rng.randint(129, 5_000)),
            ("model", lambda: rng.choice(ODD_TEXT)),
            ("model", lambda: "sora"),
            ("provider", lambda: rng.choice(["openai", "p" * 100])),
            ("metadata", lambda: {"x": "y" * rng.randint(4097, 200_000)}),
            ("metadata", lambda: {"a": {"k\x00": 1}}),
            (
                "metadata",
                lambda: {"n": rng.choice([2**63, -(2**63) - 1, 10 ** rng.randint(20, 900)])},
            ),
            (
                "request_id",
                lambda: rng.choice(["r-1\n", "r 1", "r/1", "", "r" * 129, "猫", "r\u200b1"]),
            ),
            ("timeout_s", lambda: rng.choice([0, 59, 86401, -1, 10**18])),
            (
                "reply_topic",
                lambda: rng.choice(
                    [*own, ".", "..", "__consumer_offsets", "a b", "x" * 250, "shop.results"]
                ),
            ),
            ("parameters", lambda: {"prompt": "x", rng.choice(ODD_TEXT): 1}),
            ("parameters", lambda: {"prompt": "p" * rng.randint(801, 100_000)}),
            (
                "parameters",
                lambda: {"prompt": "x", "duration": rng.choice([-1, 0, "five", [5], 10**100])},
            ),
            ("parameters", lambda: {"prompt": "x", "size": rng.choice(["1*1", "", "猫"])}),
            ("parameters", lambda: {}),
        ]
        name, make = rng.choice(changes)
        body[name] = make()  # "shop.results": fine by Kafka, but no REPLY_TOPIC_PATTERN is set
        if name == "parameters" and body["model"].startswith("wanx"):
            body["model"] = "cogvideox-flash"
        return _dumps(body)

    def _odd_unicode_id(self) -> bytes:
        body = self._envelope()
        body["request_id"] = body["request_id"] + self.rng.choice(ODD_TEXT)
        return _dumps(body)

    def _oversized(self) -> bytes:
        rng = self.rng
        size = rng.randint(900_000, MAX_RECORD_BYTES - 20_000)
        kind = rng.choice(["binary", "control", "quotes", "prompt", "metadata", "cjk"])
        if kind == "binary":
            return rng.randbytes(size)
        if kind == "control":
            return bytes(rng.choice(b"\x00\x01\x1f\x7f") for _ in range(64)) * (size // 64)
        if kind == "quotes":
            return b'"' * size
        if kind == "cjk":
            return "猫".encode() * (size // 3)
        body = self._envelope()
        if kind == "prompt":
            body["parameters"]["prompt"] = "p" * size
        else:
            body["metadata"] = {"x": "\\" * (size // 2)}
        return _dumps(body)[: MAX_RECORD_BYTES - 1000]


HOSTILE: list[tuple[str, Callable[[Generator], bytes]]] = [
    ("random-bytes", Generator._random_bytes),
    ("printable-noise", Generator._printable_noise),
    ("deep-open", Generator._deep_open),
    ("deep-valid", Generator._deep_valid),
    ("huge-number", Generator._huge_number),
    ("constants", Generator._constants),
    ("not-object", Generator._not_object),
    ("bad-utf8", Generator._bad_utf8),
    ("other-encoding", Generator._other_encoding),
    ("lone-surrogate", Generator._lone_surrogate),
    ("wrong-types", Generator._wrong_types),
    ("missing-field", Generator._missing),
    ("hostile-fields", Generator._hostile_fields),
    ("odd-unicode-id", Generator._odd_unicode_id),
]


def generate(
    seed: int,
    count: int,
    topics: Topics,
    *,
    valid_ratio: float = 0.15,
    big_ratio: float = 0.01,
    partitions: int = 3,
    tokens: Tokens | None = None,
) -> list[FuzzRecord]:
    """`count` request records, valid and hostile interleaved over `partitions`."""
    generator = Generator(seed, topics, tokens)
    records = []
    for n in range(count):
        roll = generator.rng.random()
        if roll < valid_ratio:
            record = generator.valid()
        else:
            record = generator.hostile(big=roll > 1 - big_ratio)
        record.partition = n % partitions
        records.append(record)
    return records


def generate_cancels(
    seed: int, count: int, topics: Topics, tokens: Tokens | None = None
) -> list[FuzzRecord]:
    generator = Generator(seed + 1, topics, tokens)
    return [generator.cancel() for _ in range(count)]


# --- running ----------------------------------------------------------------------------------


class Outcomes:
    """What the service published, read from its output topics."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.topics = topics
        self.consumer = AIOKafkaConsumer(
            topics.status,
            topics.completed,
            topics.dlq,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        self.dead_letters: Counter[tuple[int, int]] = Counter()
        self.dead_letter_codes: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()
        self.statuses = 0
        self.credential_leaks = 0
        self.largest_dead_letter = 0
        self.unreadable = 0
        self._seen: set[tuple[str, int, int]] = set()  # a record read twice counts once
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()

    async def _read(self) -> None:
        async for record in self.consumer:
            place = (record.topic, record.partition, record.offset)
            if place in self._seen:
                continue
            self._seen.add(place)
            value = record.value or b""
            try:
                event = json.loads(value)
                if record.topic == self.topics.dlq:
                    original = event["original"]
                    self.dead_letters[(original["partition"], original["offset"])] += 1
                    self.dead_letter_codes[event["error"]["code"]] += 1
                    self.largest_dead_letter = max(self.largest_dead_letter, len(value))
                    if CREDENTIAL.encode() in value:
                        self.credential_leaks += 1
                elif record.topic == self.topics.completed:
                    self.completed[event["request_id"]] += 1
                else:
                    self.statuses += 1
            except (ValueError, KeyError, TypeError):
                self.unreadable += 1


@dataclass
class Report:
    seed: int
    records: int
    valid: int
    hostile: int
    cancels: int
    bytes_sent: int
    send_s: float
    settle_s: float
    dead_letters: int
    codes: dict[str, int]
    kinds: dict[str, int]
    largest_dead_letter: int
    problems: list[str]

    def figures(self) -> str:
        total = self.send_s + self.settle_s
        return "\n".join(
            [
                f"seed {self.seed}: {self.records} records ({self.valid} valid, {self.hostile} "
                f"hostile) and {self.cancels} hostile cancels, {self.bytes_sent / 1e6:.1f} MB",
                f"sent in {self.send_s:.1f} s; every outcome {total:.1f} s after the first send: "
                f"{self.records / total:.0f} records/s, {self.bytes_sent / 1e6 / total:.1f} MB/s",
                f"dead letters {self.dead_letters} (largest {self.largest_dead_letter} bytes), "
                f"by code {dict(sorted(self.codes.items()))}",
                f"hostile kinds {dict(sorted(self.kinds.items()))}",
                "problems: " + ("; ".join(self.problems) if self.problems else "none"),
            ]
        )


async def send_records(
    bootstrap: str, topic: str, records: Sequence[FuzzRecord], partitioned: bool = True
) -> None:
    """Send in order and note each record's offset."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024, linger_ms=5
    )
    await producer.start()
    try:
        pending = []
        for record in records:
            pending.append(
                await producer.send(
                    topic,
                    record.value,
                    key=record.key,
                    headers=record.headers,
                    partition=record.partition if partitioned else None,
                )
            )
        for record, future in zip(records, pending, strict=True):
            metadata = await future
            record.partition, record.offset = metadata.partition, metadata.offset
    finally:
        await producer.stop()


async def run(
    *,
    seed: int,
    bootstrap: str,
    topics: Topics,
    records: Sequence[FuzzRecord],
    cancels: Sequence[FuzzRecord],
    service: ServiceProcess,
    stored_tasks: Callable[[], Awaitable[list[dict[str, Any]]]],
    timeout_s: float = 60.0,
) -> Report:
    outcomes = Outcomes(bootstrap, topics)
    await outcomes.start()
    try:
        started = time.monotonic()
        await asyncio.gather(
            send_records(bootstrap, topics.requests, records),
            send_records(bootstrap, topics.cancel, cancels, partitioned=False),
        )
        sent = time.monotonic()
        valid = {r.request_id for r in records if r.valid}
        hostile = [r for r in records if not r.valid]

        def done() -> bool:
            return len(outcomes.dead_letters) >= len(hostile) and valid <= set(outcomes.completed)

        deadline = started + timeout_s
        while not done() and time.monotonic() < deadline and service.process:
            if service.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        settled = time.monotonic()
        await asyncio.sleep(1.0)  # anything published twice would show now
        problems = await _problems(records, outcomes, service, stored_tasks)
    finally:
        await outcomes.stop()
    return Report(
        seed=seed,
        records=len(records),
        valid=len(valid),
        hostile=len(hostile),
        cancels=len(cancels),
        bytes_sent=sum(r.size for r in [*records, *cancels]),
        send_s=sent - started,
        settle_s=settled - sent,
        dead_letters=sum(outcomes.dead_letters.values()),
        codes=dict(outcomes.dead_letter_codes),
        kinds=dict(Counter(r.kind for r in hostile)),
        largest_dead_letter=outcomes.largest_dead_letter,
        problems=problems,
    )


async def _problems(
    records: Sequence[FuzzRecord],
    outcomes: Outcomes,
    service: ServiceProcess,
    stored_tasks: Callable[[], Awaitable[list[dict[str, Any]]]],
) -> list[str]:
    problems = []

    def some(items: Sequence[Any]) -> str:
        return f"{len(items)}, e.g. {list(items)[:5]}"

    assert service.process is not None
    if service.process.poll() is not None:
        problems.append(f"the service exited with {service.process.returncode}")
    by_place = {(r.partition, r.offset): r for r in records}
    no_letter = [
        (r.kind, r.partition, r.offset)
        for r in records
        if not r.valid and outcomes.dead_letters[(r.partition, r.offset)] == 0
    ]
    if no_letter:
        problems.append(f"hostile records without a dead letter: {some(no_letter)}")
    twice = [(place, n) for place, n in outcomes.dead_letters.items() if n > 1]
    if twice:
        problems.append(f"records with more than one dead letter: {some(twice)}")
    stray = [place for place in outcomes.dead_letters if place not in by_place]
    if stray:
        problems.append(f"dead letters of no record sent: {some(stray)}")
    wrong = [
        place for place in outcomes.dead_letters if place in by_place and by_place[place].valid
    ]
    if wrong:
        problems.append(f"valid requests dead-lettered: {some(wrong)}")
    valid = [r.request_id for r in records if r.valid and r.request_id]
    missing = [rid for rid in valid if not outcomes.completed[rid]]
    if missing:
        problems.append(f"valid requests not completed: {some(missing)}")
    repeated = [rid for rid, n in outcomes.completed.items() if n > 1]
    if repeated:
        problems.append(f"completed more than once: {some(repeated)}")
    if outcomes.credential_leaks:
        problems.append(f"{outcomes.credential_leaks} dead letters hold a credential header")
    if outcomes.unreadable:
        problems.append(f"{outcomes.unreadable} output events are not the contract's JSON")
    tasks = await stored_tasks()
    active = [t["request_id"] for t in tasks if t.get("active")]
    if active:
        problems.append(f"tasks still active: {some(active)}")
    strays = sorted({t["request_id"] for t in tasks} - set(valid))
    if strays:
        problems.append(f"tasks of hostile records: {some(strays)}")
    return problems
