"""The warm pool's books: fill, hand out, refill, retire — with launches that only record."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from sandbox.providers.base import ProviderError, SandboxSpec
from sandbox.providers.warm_pool import ParkingLot, Standby, Want, WarmPool

SPEC = SandboxSpec(session_id="", sandbox_id="", repo_url="/srv/app.git", branch="main", bridge_url="", token="")
POOL = ("/srv/app.git", "main")


class Books:
    def __init__(self, where: Path) -> None:
        self.where = where
        self.launched: list[Standby] = []
        self.discarded: list[Standby] = []
        self.failing = False
        self.booting = False  # launched standbys have not finished booting

    async def launch(self, want: Want) -> Standby:
        if self.failing:
            raise ProviderError("image gone")
        assert want.template.boot_mode == "standby" and want.template.token == ""
        root = self.where / str(len(self.launched))
        (root / "state").mkdir(parents=True)
        if not self.booting:
            (root / "state" / "standby-ready").touch()  # what the runtime writes once OpenCode is warm
        standby = Standby(key=want.key, root=root, process=SimpleNamespace(returncode=None))  # type: ignore[arg-type]
        self.launched.append(standby)
        return standby

    async def discard(self, standby: Standby) -> None:
        self.discarded.append(standby)


@pytest.fixture
def books(tmp_path: Path) -> Books:
    return Books(tmp_path)


@pytest.fixture
def pool(books: Books) -> WarmPool:
    return WarmPool(launch=books.launch, discard=books.discard)


def session(**changes: object) -> SandboxSpec:
    return dataclasses.replace(SPEC, session_id="s1", sandbox_id="b1", token="sbx_1", **changes)  # type: ignore[arg-type]


async def test_fills_hands_out_and_refills(pool: WarmPool, books: Books) -> None:
    pool.want("img_1", SPEC, 2)
    await pool.settled()
    assert len(pool.standbys(POOL)) == 2
    taken = pool.take("img_1", session())
    assert taken is books.launched[0]
    await pool.settled()
    assert len(books.launched) == 3 and taken not in pool.standbys(POOL) and len(pool.standbys(POOL)) == 2


async def test_hands_out_nothing_to_another_image_or_environment_and_skips_the_dead(
    pool: WarmPool, books: Books
) -> None:
    pool.want("img_1", SPEC, 1)
    await pool.settled()
    assert pool.take("img_2", session()) is None
    assert pool.take("img_1", session(secrets={"K": "v"})) is None
    books.launched[0].process.returncode = 1  # type: ignore[misc]  # it died while pooled
    assert pool.take("img_1", session()) is None
    pool.want("img_1", SPEC, 1)
    await pool.settled()
    assert books.discarded == [books.launched[0]] and len(pool.standbys(POOL)) == 1


async def test_a_standby_still_booting_is_not_handed_out(pool: WarmPool, books: Books) -> None:
    books.booting = True
    pool.want("img_1", SPEC, 1)
    await pool.settled()
    assert pool.take("img_1", session()) is None  # a failure before its claim would reach nobody
    (books.launched[0].root / "state" / "standby-ready").touch()
    assert pool.take("img_1", session()) is books.launched[0]


async def test_new_settings_retire_the_pool_and_zero_empties_it(pool: WarmPool, books: Books) -> None:
    pool.want("img_1", SPEC, 2)
    await pool.settled()
    pool.want("img_2", SPEC, 1)  # a new image
    await pool.settled()
    assert books.discarded == books.launched[:2] and [s.key for s in pool.standbys(POOL)] == [books.launched[2].key]
    pool.want("img_2", SPEC, 0)
    await pool.settled()
    assert pool.standbys(POOL) == [] and len(books.discarded) == 3


async def test_a_failing_launch_leaves_the_pool_short_not_broken(pool: WarmPool, books: Books) -> None:
    books.failing = True
    pool.want("img_1", SPEC, 2)
    await pool.settled()
    assert pool.standbys(POOL) == [] and pool.take("img_1", session()) is None
    books.failing = False
    pool.want("img_1", SPEC, 2)
    await pool.settled()
    assert len(pool.standbys(POOL)) == 2
    await pool.close()
    assert len(books.discarded) == 2 and pool.standbys(POOL) == []


async def test_parking_keeps_the_newest_few_for_their_own_session_and_environment() -> None:
    stopped: list[object] = []

    async def discard(process: object) -> None:
        stopped.append(process)

    lot = ParkingLot(capacity=2, ttl_s=60, discard=discard)  # type: ignore[arg-type]
    a, b, c, d = (SimpleNamespace(returncode=None) for _ in range(4))
    assert lot.park("snap_a", "s1", "k", a) and lot.park("snap_b", "s2", "k", b)  # type: ignore[arg-type]
    assert lot.park("snap_c", "s3", "k", c)  # type: ignore[arg-type]  # the longest parked (a) makes room
    await lot.settled()
    assert stopped == [a] and sorted(lot.refs()) == ["snap_b", "snap_c"]
    assert await lot.take("snap_b", "s9", "k") is None  # another session's restore never resumes it
    assert await lot.take("snap_b", "s2", "k") is b and await lot.take("snap_b", "s2", "k") is None
    assert await lot.take("snap_c", "s3", "rotated") is None  # its secrets changed since: stopped
    assert stopped == [a, c] and lot.refs() == []
    assert lot.park("snap_d", "s4", "k", d)  # type: ignore[arg-type]
    await lot.leave("s4")  # its directory is about to be reused: stopped, and waited for
    assert stopped == [a, c, d]
    assert not ParkingLot(capacity=0, ttl_s=60, discard=discard).park("snap_e", "s5", "k", a)  # type: ignore[arg-type]
    await lot.close()


async def test_pools_stay_within_the_limit_over_all_repositories(books: Books) -> None:
    pool = WarmPool(launch=books.launch, discard=books.discard, limit=3)
    other = dataclasses.replace(SPEC, repo_url="/srv/lib.git")
    pool.want("img_1", SPEC, 2)
    pool.want("img_9", other, 2)
    await pool.settled()
    app, lib = pool.standbys(POOL), pool.standbys(("/srv/lib.git", "main"))
    assert len(app) + len(lib) == 3 == len(books.launched)  # one pool stays short
    short = SPEC if len(app) == 1 else other
    taken = pool.take("img_1" if short is SPEC else "img_9", dataclasses.replace(short, session_id="s1"))
    assert taken is not None
    await pool.settled()
    assert len(books.launched) == 4 and len(pool.standbys(POOL)) + len(pool.standbys(("/srv/lib.git", "main"))) == 3
    await pool.close()
