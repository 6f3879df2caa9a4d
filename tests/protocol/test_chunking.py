"""Output chunking: exact round trip, size bound, UTF-8 boundaries, line-run bookkeeping."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cc_executor.protocol.chunking import (
    MIN_TEXT_RUN,
    OUTPUT_CHUNK_MAX_BYTES,
    OutputChunker,
    OutputPiece,
)

KiB = 1024


def _bytes(pieces: list[OutputPiece]) -> bytes:
    return b"".join(
        base64.b64decode(p.data) if p.encoding == "base64" else p.data.encode() for p in pieces
    )


def _run(data: bytes, splits: list[int] | None = None, max_bytes: int = 64) -> list[OutputPiece]:
    """Feed ``data`` cut at ``splits`` (sorted offsets), then flush; check every invariant."""
    chunker = OutputChunker("stdout", max_bytes=max_bytes)
    pieces: list[OutputPiece] = []
    previous = 0
    for offset in [*(splits or []), len(data)]:
        pieces += chunker.feed(data[previous:offset])
        assert len(chunker.pending) <= 3
        previous = offset
    pieces += chunker.flush()
    assert _bytes(pieces) == data
    _check(pieces, max_bytes)
    return pieces


def _check(pieces: list[OutputPiece], max_bytes: int) -> None:
    """The consumer's view: size bound, and the line-run state machine of the contract."""
    run = 0  # pieces seen in the open run
    for number, piece in enumerate(pieces):
        assert len(orjson.dumps(piece.data)) - 2 <= max_bytes
        assert piece.stream == "stdout"
        raw = _bytes([piece])
        final = number == len(pieces) - 1
        if not raw:
            assert final, "empty pieces only close a run at flush"
            assert run
        ends = raw.endswith(b"\n")
        if run:
            assert piece.chunk_index == run
            assert ends or b"\n" not in raw, "a run continues only on a piece without newline"
            if ends or final:
                assert not piece.truncated
                assert piece.total_chunks == run + 1
                run = 0
            else:
                assert piece.truncated
                assert piece.total_chunks is None
                run += 1
        elif ends or final:
            assert not piece.truncated
            assert piece.chunk_index is None
            assert piece.total_chunks is None
        else:
            assert piece.truncated
            assert piece.chunk_index == 0
            assert piece.total_chunks is None
            run = 1
    assert run == 0


def test_plain_lines_are_one_piece() -> None:
    (piece,) = _run(b"one\ntwo\n")
    assert piece.to_params() == {"type": "stdout", "data": "one\ntwo\n", "truncated": False}


def test_feed_of_nothing_and_flush_of_nothing() -> None:
    chunker = OutputChunker("stderr")
    assert chunker.feed(b"") == []
    assert chunker.flush() == []


def test_max_bytes_floor() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        OutputChunker("stdout", max_bytes=7)


def test_character_cut_by_a_read_is_held_back() -> None:
    euro = "€".encode()
    chunker = OutputChunker("stdout")
    first = chunker.feed(b"price: " + euro[:1])
    assert chunker.pending == euro[:1]
    assert chunker.feed(euro[1:2]) == []
    assert chunker.pending == euro[:2]
    second = chunker.feed(euro[2:] + b"\n")
    assert chunker.pending == b""
    assert [p.data for p in first + second] == ["price: ", "€\n"]
    assert all(p.encoding is None for p in first + second)


def test_held_bytes_at_eof_go_out_as_base64() -> None:
    chunker = OutputChunker("stdout")
    assert chunker.feed(b"ok\n\xf0\x9f") == [OutputPiece("stdout", "ok\n")]
    (tail,) = chunker.flush()
    assert tail == OutputPiece("stdout", base64.b64encode(b"\xf0\x9f").decode(), encoding="base64")


def test_invalid_bytes_go_base64_and_text_stays_text() -> None:
    data = b"a" * 100 + b"\xff" + b"b" * 100 + b"\n"
    pieces = _run(data, max_bytes=OUTPUT_CHUNK_MAX_BYTES)
    assert [p.encoding for p in pieces] == [None, "base64", None]
    assert pieces[1].data == base64.b64encode(b"\xff").decode()
    assert pieces[2].to_params()["total_chunks"] == 3


def test_short_text_between_invalid_bytes_rides_along_in_base64() -> None:
    data = b"\xff" + b"x" * (MIN_TEXT_RUN - 1) + b"\xfe\n"
    (piece,) = _run(data, max_bytes=OUTPUT_CHUNK_MAX_BYTES)
    assert piece.encoding == "base64"
    assert piece.to_params()["encoding"] == "base64"


def test_binary_output_does_not_shatter_and_text_is_found_again() -> None:
    noise = bytes((i * 7919 + 13) % 251 + 5 for i in range(64 * KiB)).replace(b"\n", b"\x80")
    text = b"readable text after the binary part\n" * 50
    pieces = _run(noise + text, [20_000], max_bytes=OUTPUT_CHUNK_MAX_BYTES)
    assert len(pieces) <= 5
    assert pieces[-1].encoding is None
    assert pieces[-1].data.endswith(text[-600:].decode())


def test_text_in_any_script_is_found_again_after_binary() -> None:
    noise = bytes((i * 7919 + 13) % 251 + 5 for i in range(5000)).replace(b"\n", b"\x80")
    text = "漢字かな交じり文のテキスト。\n".encode() * 200
    pieces = _run(noise + text, max_bytes=OUTPUT_CHUNK_MAX_BYTES)
    as_text = sum(len(p.data.encode()) for p in pieces if p.encoding is None)
    assert as_text >= len(text) - 1024


def test_escaping_growth_is_measured() -> None:
    data = b"\x01" * (64 * KiB)  # each byte escapes to \u0001: six times its size
    pieces = _run(data, [30_000], max_bytes=OUTPUT_CHUNK_MAX_BYTES)
    assert all(p.encoding is None for p in pieces)
    assert len(pieces) >= 6


def test_long_line_then_newline_bookkeeping() -> None:
    pieces = _run(b"a" * 150 + b"\nnext", max_bytes=64)
    params = [p.to_params() for p in pieces]
    assert [(p.get("chunk_index"), p.get("total_chunks"), p["truncated"]) for p in params] == [
        (0, None, True),
        (1, None, True),
        (2, 3, False),
        (0, None, True),
        (1, 2, False),
    ]
    assert [p["data"] for p in params[-2:]] == ["next", ""]


def test_open_run_closed_by_empty_piece_at_flush() -> None:
    chunker = OutputChunker("stdout", max_bytes=8)
    pieces = chunker.feed(b"0123456789")
    assert [p.chunk_index for p in pieces] == [0, 1]
    assert chunker.flush() == [OutputPiece("stdout", "", chunk_index=2, total_chunks=3)]


def test_read_finishing_a_line_and_starting_another_is_cut_after_the_newline() -> None:
    chunker = OutputChunker("stdout")
    assert chunker.feed(b"partial")[0].chunk_index == 0
    end, start = chunker.feed(b" line\nfull\nnext")
    assert (end.data, end.chunk_index, end.total_chunks) == (" line\nfull\n", 1, 2)
    assert (start.data, start.chunk_index, start.truncated) == ("next", 0, True)


def test_nine_megabyte_line_then_after() -> None:
    line = b"x" * (9 * 1024 * KiB)
    chunker = OutputChunker("stdout")
    pieces: list[OutputPiece] = []
    for offset in range(0, len(line), 64 * KiB):
        pieces += chunker.feed(line[offset : offset + 64 * KiB])
    pieces += chunker.feed(b"after\n")
    pieces += chunker.flush()
    assert _bytes(pieces) == line + b"after\n"
    _check(pieces, OUTPUT_CHUNK_MAX_BYTES)
    assert [p.chunk_index for p in pieces] == list(range(len(pieces)))
    assert pieces[-1].data == "after\n"
    assert pieces[-1].total_chunks == len(pieces) == 145
    assert all(p.truncated for p in pieces[:-1])


def test_a_full_read_of_lines_costs_at_most_two_pieces() -> None:
    lines = b"".join(b"line %06d of some program output\n" % i for i in range(3000))
    chunker = OutputChunker("stdout")
    for offset in range(0, len(lines), 64 * KiB):
        assert len(chunker.feed(lines[offset : offset + 64 * KiB])) <= 2


def test_to_params_omits_unset_fields() -> None:
    piece = OutputPiece("stderr", "x", truncated=True, chunk_index=0)
    assert piece.to_params() == {
        "type": "stderr",
        "data": "x",
        "truncated": True,
        "chunk_index": 0,
    }


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    parts = draw(
        st.lists(
            st.binary(max_size=40)
            | st.text(max_size=40).map(str.encode)
            | st.sampled_from([b"\n", b"\n\n", "é€😀".encode(), b'\x00\x1f"\\']),
            max_size=12,
        )
    )
    data = b"".join(parts)
    splits = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    max_bytes = draw(st.integers(8, 96))
    return data, splits, max_bytes


@settings(max_examples=400)
@given(_streams())
def test_round_trip_size_and_bookkeeping_for_any_stream(
    stream: tuple[bytes, list[int], int],
) -> None:
    data, splits, max_bytes = stream
    _run(data, splits, max_bytes)


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_round_trip_for_binary_at_the_default_size(data: bytes, cuts: list[int]) -> None:
    _run(data, sorted(c for c in cuts if c <= len(data)), OUTPUT_CHUNK_MAX_BYTES)


@given(st.text(max_size=400), st.integers(8, 40))
def test_valid_text_never_goes_base64(text: str, max_bytes: int) -> None:
    if any("\ud800" <= c <= "\udfff" for c in text):
        return  # lone surrogates cannot be written as UTF-8 by any program
    pieces = _run(text.encode(), [len(text.encode()) // 2], max_bytes)
    assert all(p.encoding is None for p in pieces if p.data)
