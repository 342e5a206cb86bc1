"""BlobReader reads a blob's bytes as Git stores them, and refuses big ones unread."""

from __future__ import annotations

import pygit2

from aureacore_db.blobs import BlobReader
from aureacore_db.parsing import parse_config


def _blob(repo, rel: str) -> str:
    return str(pygit2.Repository(str(repo.path)).revparse_single(f"HEAD:{rel}").id)


def test_a_blob_is_parsed_from_its_exact_bytes(repo):
    texts = {
        "services/a/crlf.yaml": b"name: crlf\r\nversion: '1.0.0'\r\n",
        "services/a/bom.yaml": b"\xef\xbb\xbfname: bom\nversion: 1.0.0\n",
        "services/a/binary.yaml": b"name: x\0\n",
        "services/a/latin1.yaml": b"name: caf\xe9\n",
        "services/a/empty.yaml": b"",
        "services/a/doc.json": '{"name": "j", "version": "1.0.0", "d": "é"}'.encode(),
    }
    for rel, data in texts.items():
        repo.write(rel, data)
    repo.commit("files")
    reader = BlobReader(pygit2.Repository(str(repo.path)))
    for rel, data in texts.items():
        assert reader.read(_blob(repo, rel), rel) == parse_config(data, rel), rel
    assert reader.check(_blob(repo, "services/a/crlf.yaml"), "services/a/crlf.yaml").name == "crlf"


def test_a_blob_over_the_limit_is_refused_by_its_size(repo):
    repo.write("services/a/big.yaml", "name: big\n" + "# padding\n" * 100)
    repo.commit("big")
    reader = BlobReader(pygit2.Repository(str(repo.path)), max_bytes=100)
    result = reader.read(_blob(repo, "services/a/big.yaml"), "services/a/big.yaml")
    assert result.content is None and result.raw is None
    assert result.size == 1010 and "100" in result.error
