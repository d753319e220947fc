import itertools
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from claude_context.errors import IndexBusyError
from claude_context.index.base import KeywordDoc
from claude_context.index.keyword.bm25 import TantivyKeywordIndex
from claude_context.index.keyword.tokens import code_token_text, code_tokens, query_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("getUserName", ["get", "user", "name", "getusername"]),
        ("get_user_name", ["get", "user", "name", "getusername"]),
        ("GetUserName", ["get", "user", "name", "getusername"]),
        ("get-user-name", ["get", "user", "name"]),
        ("MAX_RETRIES", ["max", "retries", "maxretries"]),
        ("HTTPServer", ["http", "server", "httpserver"]),
        ("XMLHttpRequest", ["xml", "http", "request", "xmlhttprequest"]),
        ("IOError", ["io", "error", "ioerror"]),
        ("parseURLs", ["parse", "urls", "parseurls"]),
        ("utf8Decode", ["utf8", "decode", "utf8decode"]),
        ("base64encode", ["base64", "encode", "base64encode"]),
        ("HTTP2Server", ["http2", "server", "http2server"]),
        ("x86_64", ["x86", "64", "x8664"]),
        ("__init__", ["init"]),
        ("getX", ["get", "getx"]),  # 1-char part dropped, still part of the joined form
        ("status 404 and 0", ["status", "404", "and"]),  # 1-char tokens (incl. digits) dropped
        ("café_crème", ["café", "crème", "cafécrème"]),
        ("a.b(c) = 'x' + \"yy\"", ["yy"]),
        ("", []),
        ("🙂 ::: ***", []),
        ("z" * 65, []),  # blobs are not search terms
    ],
)
def test_code_tokens(text: str, expected: list[str]) -> None:
    assert code_tokens(text) == expected
    assert code_token_text(text).split() == expected  # the index's text form (cached per word)


def test_query_tokens_drop_stop_words_and_dedupe() -> None:
    assert query_tokens("how are the retries for the upload configured?") == [
        "retries",
        "for",
        "upload",
        "configured",
    ]
    assert query_tokens("user user getUser") == ["user", "get", "getuser"]
    assert query_tokens("this") == ["this"]  # only stop words: keep them
    assert query_tokens("if not while") == ["if", "not", "while"]  # programming words survive


def doc(i: int, content: str, path: str | None = None, symbol: str = "", context: str = "") -> KeywordDoc:
    return KeywordDoc(id=i, path=path or f"src/f{i}.py", symbol=symbol, content=content, context=context)


@pytest.fixture
def ix(tmp_path: Path):
    index = TantivyKeywordIndex(tmp_path)
    yield index
    index.close()


@pytest.fixture
def filled(ix: TantivyKeywordIndex) -> TantivyKeywordIndex:
    ix.add(
        [
            doc(1, "def getUserName(self):\n    return self._name", symbol="User.getUserName"),
            doc(2, "def upload(path, retries=3):\n    for attempt in range(retries): send(path)"),
            doc(3, "class HTTPServer:\n    pass", path="net/server.py"),
            doc(4, "get the user a name for display", path="docs/notes.py"),
            doc(5, "unrelated content about colours"),
        ]
    )
    ix.commit(1)
    return ix


def ids_of(hits) -> list[int]:
    return [h.id for h in hits]


@pytest.mark.parametrize("q", ["getUserName", "get_user_name", "get user name", "GetUserName", "getusername"])
def test_spellings_meet(filled: TantivyKeywordIndex, q: str) -> None:
    hits = filled.search(q, 10)
    assert ids_of(hits)[0] == 1
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_whole_identifier_outranks_scattered_words(filled: TantivyKeywordIndex) -> None:
    hits = filled.search("get_user_name", 10)
    assert ids_of(hits)[:2] == [1, 4]
    assert hits[0].score > hits[1].score


def test_stemming(filled: TantivyKeywordIndex) -> None:
    assert ids_of(filled.search("retry", 10)) == [2]
    assert ids_of(filled.search("uploads", 10)) == [2]
    assert ids_of(filled.search("http servers", 10))[0] == 3


@pytest.mark.parametrize(
    "q",
    [
        '"',
        ":",
        "*",
        "(",
        ")",
        "AND OR NOT",
        "",
        "   ",
        "🙂🙂",
        "path:foo",
        "a:b*c~2^3",
        "[1 TO 5]",
        "\\",
        "x" * 10_000,
        "get " * 5000,
        "\x00\x01",
        "'unterminated",
        "{}",
        "-user",
        "+user",
    ],
)
def test_hostile_queries_never_raise(filled: TantivyKeywordIndex, q: str) -> None:
    hits = filled.search(q, 10)
    assert isinstance(hits, list)


def test_operators_are_plain_words(filled: TantivyKeywordIndex) -> None:
    assert ids_of(filled.search("-user", 10)) == ids_of(filled.search("user", 10))
    assert ids_of(filled.search("path:upload", 10)) == [2]


def test_k_and_empty(filled: TantivyKeywordIndex) -> None:
    assert filled.search("user", 0) == []
    assert len(filled.search("user", 1)) == 1
    assert filled.search("🙂", 10) == []
    assert ids_of(filled.search("the of", 10)) == [4]  # stop words only: kept, not an empty query


def test_path_filter_is_exact(filled: TantivyKeywordIndex) -> None:
    assert ids_of(filled.search("user name", 10, {"docs/notes.py"})) == [4]
    assert ids_of(filled.search("user name", 10, {"docs/notes.p", "docs"})) == []
    assert filled.search("user name", 10, set()) == []
    unfiltered = {h.id: h.score for h in filled.search("user name", 10)}
    filtered = filled.search("user name", 10, {"src/f1.py", "docs/notes.py"})
    assert {h.id: h.score for h in filtered} == pytest.approx({1: unfiltered[1], 4: unfiltered[4]})


def test_meta_boost_is_a_parameter(tmp_path: Path) -> None:
    docs = [doc(1, "alpha beta gamma", symbol="Parser"), doc(2, "parser beta gamma")]
    strong = TantivyKeywordIndex(tmp_path / "a", meta_boost=10.0)
    strong.add(docs)
    strong.commit(1)
    weak = TantivyKeywordIndex(tmp_path / "b", meta_boost=0.01)
    weak.add(docs)
    weak.commit(1)
    assert ids_of(strong.search("parser", 2)) == [1, 2]
    assert ids_of(weak.search("parser", 2)) == [2, 1]
    strong.close()
    weak.close()


def test_uncommitted_changes_are_invisible(ix: TantivyKeywordIndex) -> None:
    ix.add([doc(1, "alpha"), doc(2, "beta")])
    assert ix.search("alpha", 10) == [] and ix.count() == 0 and ix.ids() == set()
    ix.commit(1)
    assert ids_of(ix.search("alpha", 10)) == [1] and ix.count() == 2
    ix.delete([1])
    ix.add([doc(3, "alpha again")])
    assert ids_of(ix.search("alpha", 10)) == [1]  # still the committed view
    ix.commit(2)
    assert ids_of(ix.search("alpha", 10)) == [3] and ix.ids() == {2, 3}


def test_add_replaces_existing_id(ix: TantivyKeywordIndex) -> None:
    ix.add([doc(1, "alpha")])
    ix.commit(1)
    ix.add([doc(1, "beta")])
    ix.commit(2)
    assert ix.count() == 1 and ix.search("alpha", 10) == [] and ids_of(ix.search("beta", 10)) == [1]
    ix.add([doc(2, "gamma"), doc(2, "delta")])  # repeated id within one batch: last wins
    ix.commit(3)
    assert ix.count() == 2 and ix.search("gamma", 10) == [] and ids_of(ix.search("delta", 10)) == [2]


def test_ids_exact_after_deletes(ix: TantivyKeywordIndex) -> None:
    big = [2**62 + 5, 10**12, 77_777]
    ix.add([doc(i, f"word{i % 7} common") for i in range(1, 1501)] + [doc(i, "x") for i in big])
    ix.commit(1)
    ix.delete(range(1, 1501, 3))
    ix.delete([999_999])  # unknown: ignored
    ix.commit(2)
    expected = (set(range(1, 1501)) - set(range(1, 1501, 3))) | set(big)
    assert ix.ids() == expected and ix.count() == len(expected)


def test_generation_round_trip_and_reopen(tmp_path: Path) -> None:
    ix = TantivyKeywordIndex(tmp_path)
    assert ix.committed_generation() is None
    ix.add([doc(1, "alpha")])
    ix.commit(7)
    assert ix.committed_generation() == 7
    assert json.loads((tmp_path / "bm25.json").read_text())["generation"] == 7
    ix.close()
    again = TantivyKeywordIndex(tmp_path)
    assert again.committed_generation() == 7 and ids_of(again.search("alpha", 5)) == [1]
    again.add([doc(2, "beta")])  # the writer lock was released by close()
    again.commit(8)
    again.close()
    assert TantivyKeywordIndex(tmp_path).committed_generation() == 8


def test_closed_index_discards_uncommitted(tmp_path: Path) -> None:
    ix = TantivyKeywordIndex(tmp_path)
    ix.add([doc(1, "alpha")])
    ix.commit(1)
    ix.add([doc(2, "beta")])
    ix.close()
    with pytest.raises(RuntimeError):
        ix.search("alpha", 5)
    again = TantivyKeywordIndex(tmp_path)
    assert again.ids() == {1}
    again.close()


def _filled_dir(tmp_path: Path) -> None:
    ix = TantivyKeywordIndex(tmp_path)
    ix.add([doc(i, f"alpha {i}") for i in range(1, 50)])
    ix.commit(4)
    ix.close()


@pytest.mark.parametrize(
    "damage", ["meta_garbage", "segment_truncated", "segment_missing", "old_version", "no_sidecar"]
)
def test_corrupt_index_is_wiped(tmp_path: Path, damage: str) -> None:
    _filled_dir(tmp_path)
    d = tmp_path / "bm25"
    segment = sorted(p for p in d.iterdir() if p.suffix == ".term")[0]
    if damage == "meta_garbage":
        (d / "meta.json").write_text("{garbage")
    elif damage == "segment_truncated":
        segment.write_bytes(segment.read_bytes()[:10])
    elif damage == "segment_missing":
        segment.unlink()
    elif damage == "old_version":
        side = json.loads((tmp_path / "bm25.json").read_text())
        side["tokenizer_version"] = -1
        (tmp_path / "bm25.json").write_text(json.dumps(side))
    else:
        (tmp_path / "bm25.json").unlink()
    ix = TantivyKeywordIndex(tmp_path)
    assert ix.committed_generation() is None and ix.count() == 0 and ix.search("alpha", 5) == []
    ix.add([doc(1, "alpha")])
    ix.commit(5)
    assert ids_of(ix.search("alpha", 5)) == [1] and ix.committed_generation() == 5
    ix.close()


def test_second_writer_same_process_is_busy(tmp_path: Path) -> None:
    a = TantivyKeywordIndex(tmp_path)
    a.add([doc(1, "alpha")])  # takes the writer lock
    a.commit(1)
    b = TantivyKeywordIndex(tmp_path)  # readers open fine
    assert ids_of(b.search("alpha", 5)) == [1]
    with pytest.raises(IndexBusyError):
        b.add([doc(2, "beta")])
    with pytest.raises(IndexBusyError):
        b.commit(2)
    a.add([doc(3, "gamma")])
    a.commit(2)
    assert ids_of(b.search("gamma", 5)) == [3] and b.count() == 2  # the holder's commit, at once
    a.close()
    b.add([doc(2, "beta")])  # free after the holder closed
    b.commit(3)
    assert b.ids() == {1, 2, 3}
    b.close()


def test_second_writer_other_process_is_busy(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(root)!r})
        from claude_context.index.base import KeywordDoc
        from claude_context.index.keyword.bm25 import TantivyKeywordIndex
        ix = TantivyKeywordIndex(__import__("pathlib").Path({str(tmp_path)!r}))
        ix.add([KeywordDoc(9, "p.py", "", "holder")])
        ix.commit(1)
        print("ready", flush=True)
        sys.stdin.read()
        ix.close()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        ix = TantivyKeywordIndex(tmp_path)
        assert ids_of(ix.search("holder", 5)) == [9]  # readers open fine
        with pytest.raises(IndexBusyError):
            ix.add([doc(1, "alpha")])
        ix.close()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=20)
    ix = TantivyKeywordIndex(tmp_path)
    ix.add([doc(1, "alpha")])
    ix.commit(2)
    assert ix.ids() == {1, 9}
    ix.close()


def test_token_texts_computed_ahead_are_used_only_by_their_tokenizer(tmp_path: Path) -> None:
    """A chunk worker hands the index the ``code`` token texts; a ``plain`` index tokenizes itself."""
    from claude_context.index.keyword.tokens import token_texts

    content = "def getUserName(self): return self._name"
    ahead = ("code", *token_texts("src/u.py", "User.getUserName", content, ""))
    for tokenizer, hits in (("code", [1, 2]), ("plain", [])):
        ix = TantivyKeywordIndex(tmp_path / tokenizer, tokenizer=tokenizer)
        try:
            ix.add([KeywordDoc(1, "src/u.py", "User.getUserName", content, tokens=ahead)])
            ix.add([doc(2, content, path="src/v.py", symbol="User.getUserName")])
            ix.commit(1)
            assert sorted(h.id for h in ix.search("get", 5)) == hits  # plain keeps getUserName whole
            assert [h.id for h in ix.search("getusername", 5)] in ([1, 2], [2, 1])
        finally:
            ix.close()


def test_an_opener_that_saw_no_sidecar_does_not_wipe_a_fresh_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two openers of one new keyword index (the MCP server's index job and a status call, or two
    processes): the late one read "no sidecar" before the early one wrote it, then found the
    folder and rebuilt it under the early one's feet (tantivy: "No such file or directory" at
    its first commit). Seen once through MCP on a fresh home; here the late reader is held."""
    import threading
    import time

    real = TantivyKeywordIndex._read_sidecar

    def read(self):
        meta = real(self)
        if threading.current_thread().name == "late":
            time.sleep(0.5)  # decides on what it read, after the early opener built the index
        return meta

    monkeypatch.setattr(TantivyKeywordIndex, "_read_sidecar", read)
    folder = tmp_path / "kw"
    opened: dict[str, TantivyKeywordIndex] = {}
    late = threading.Thread(target=lambda: opened.update(late=TantivyKeywordIndex(folder)), name="late")
    with caplog.at_level(logging.WARNING):
        late.start()
        time.sleep(0.1)
        early = opened["early"] = TantivyKeywordIndex(folder)
        early.add([KeywordDoc(1, "a.py", "f", "retry the upload")])
        early.commit(1)
        late.join(30)
    assert not [r for r in caplog.records if "rebuilding" in r.getMessage()]  # nothing wiped
    assert [h.id for h in opened["late"].search("upload", 5)] == [1]  # the early one's commit
    for index in opened.values():
        index.close()
