"""Git timestamps as stored text (ISO-8601 UTC), any year."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from aureacore_db.timestamps import git_time_iso


def test_years_1000_to_9999_read_as_datetime_writes_them():
    rng = random.Random(5)
    first, end = -30610224000, 253402300800  # 1000-01-01, 10000-01-01
    for stamp in [first, end - 1, 0, -1, 951782400, *(rng.randrange(first, end)
                                                       for _ in range(20000))]:
        expected = datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert git_time_iso(stamp) == expected


def test_other_years_in_the_expanded_form():
    assert git_time_iso(-30610224001) == "0999-12-31T23:59:59Z"
    assert git_time_iso(253402300800) == "+10000-01-01T00:00:00Z"
