"""Which Redis URLs the store takes: what its parsers read; anything else, refused in one line."""

from __future__ import annotations

import pytest

from jobqueue.redis import RedisStoreSettings


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://user:secret@127.0.0.1:6380/0",
        "unix:///tmp/redis.sock",
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0",
        "REDIS+SENTINEL://127.0.0.1:26379/mymaster/0",  # urlsplit reads any case
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
    ],
)
def test_the_forms_the_parsers_read_are_taken(url: str) -> None:
    assert RedisStoreSettings(url=url).url == url


def test_a_node_list_with_cluster_set_is_taken() -> None:
    # The cluster's own parser reads the comma list; a single port check refused it.
    url = "redis://127.0.0.1:7000,127.0.0.1:7001"
    assert RedisStoreSettings(url=url, cluster=True).url == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://user:secret@127.0.0.1:1", "not http://"),
        ("REDIS://127.0.0.1:1/0", "not REDIS://"),  # redis-py refuses it after the start
        (" redis://127.0.0.1:1/0", "url must start with one of"),
        ("redis://:::/0", "url: Port could not be cast"),
        ("127.0.0.1:6379", "url must start with one of"),
        ("REDIS+CLUSTER://127.0.0.1:7000", "not REDIS+CLUSTER://"),  # read as no cluster
    ],
)
def test_what_no_parser_reads_is_refused_in_one_line(url: str, said: str) -> None:
    with pytest.raises(ValueError, match="url") as refused:
        RedisStoreSettings(url=url)
    assert said in str(refused.value)
    assert "secret" not in str(refused.value)
