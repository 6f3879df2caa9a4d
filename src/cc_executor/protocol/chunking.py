"""Cut one output stream (stdout or stderr) into ``process.output`` pieces.

This module owns the byte-to-piece contract; it does not read pipes (``supervisor/`` does) nor
number or send events (the event log and the doors do). Feed it reads as they come::

    chunker = OutputChunker("stdout")
    for piece in chunker.feed(read_bytes):      # zero or more pieces per read
        log.append(Notification.PROCESS_OUTPUT, piece.to_params())
    ...
    pieces = chunker.flush()                    # at EOF

Contract
--------
* **Exact round trip.** Concatenating the bytes of all pieces of a stream (``data`` base64-decoded
  when ``encoding == "base64"``, else UTF-8 encoded) gives back exactly the bytes fed. Nothing is
  replaced, dropped or reordered.
* **Size bound.** Each piece's ``data`` takes at most ``max_bytes`` inside the JSON text
  (``len(orjson.dumps(data)) - 2``). JSON escaping can grow text (a control character becomes
  ``\\u00XX``), so the encoded size is what is checked. Text is never cut inside a character.
* **UTF-8 boundaries.** A character cut by a read boundary is held back (at most 3 bytes) until the
  next feed completes it; :meth:`OutputChunker.flush` emits whatever is still held.
* **Invalid bytes** go out base64 (``encoding: "base64"``). Valid stretches of at least
  :data:`MIN_TEXT_RUN` characters around them stay text; shorter ones join the base64 piece so
  binary output does not shatter into tiny pieces.
* **No newline splitting for its own sake.** A piece carries as many lines as a read had; the only
  cuts are the size bound and the line bookkeeping below.

Line bookkeeping
----------------
A *run* is the sequence of pieces one line spans when it is cut (by the size bound or a read).

* A piece whose data does not end with ``"\\n"`` (other than the last piece at flush) has
  ``truncated: true``: its last line continues in the next piece. Its ``chunk_index`` is its index
  in that line's run, 0 when the run starts in this piece.
* The piece that ends a run (its data ends with ``"\\n"``, or it is the last piece at flush) has
  ``truncated: false``, ``chunk_index`` = its index and ``total_chunks`` = the run's length.
* Pieces that neither continue nor start a run have no chunk fields. Neither has a last piece at
  flush whose unterminated line starts in it: a one-piece line is not a run.
* While a run is open, the next piece either ends it (its data ends with ``"\\n"``; it may carry
  further complete lines) or continues it and contains no newline at all. A read that finishes
  the open line and starts an unfinished one is therefore cut after its last newline, so every run
  closes with ``total_chunks`` and the next run starts at index 0.
* If at flush a run is open and nothing is left to emit, one piece with empty ``data`` closes it.
"""

from __future__ import annotations

import base64
import codecs
from dataclasses import dataclass
from typing import Any, AnyStr, Literal

import orjson

__all__ = ["MIN_TEXT_RUN", "OUTPUT_CHUNK_MAX_BYTES", "OutputChunker", "OutputPiece"]

OUTPUT_CHUNK_MAX_BYTES = 64 * 1024  # the earlier CC Executor's bound on one piece's data
MIN_TEXT_RUN = 32  # shorter valid stretches between invalid bytes ride along in base64
_MIN_MAX_BYTES = 8  # one character escapes to at most 6 bytes; base64 needs 4 per 3 bytes

_SCAN_BLOCK = 512  # granularity at which text is found again inside binary output
_decode_utf8 = codecs.utf_8_decode

Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True, slots=True)
class OutputPiece:
    """One ``process.output`` payload (without ``execution_id`` and ``seq``)."""

    stream: Stream
    data: str
    truncated: bool = False
    chunk_index: int | None = None
    total_chunks: int | None = None
    encoding: Literal["base64"] | None = None

    def raw_bytes(self) -> bytes:
        """The stream bytes this piece carries."""
        if self.encoding == "base64":
            return base64.b64decode(self.data)
        return self.data.encode("utf-8")

    def to_params(self) -> dict[str, Any]:
        """``process.output`` params; chunk fields and ``encoding`` only when set."""
        params: dict[str, Any] = {
            "type": self.stream,
            "data": self.data,
            "truncated": self.truncated,
        }
        if self.chunk_index is not None:
            params["chunk_index"] = self.chunk_index
        if self.total_chunks is not None:
            params["total_chunks"] = self.total_chunks
        if self.encoding is not None:
            params["encoding"] = self.encoding
        return params


def _json_size(text: str) -> int:
    # The exact size inside a JSON document: orjson is what the event log encodes with.
    return len(orjson.dumps(text)) - 2


def _partial_tail(buf: bytes) -> int:
    """Length (0..3) of a character start at the end of ``buf`` that the next read may complete."""
    for back in range(1, min(3, len(buf)) + 1):
        byte = buf[-back]
        if byte < 0x80:
            return 0
        if byte >= 0xC0:  # a lead byte: how long is its character?
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4 if byte < 0xF8 else 0
            return back if length > back else 0
    return 0  # three continuation bytes: complete (or invalid), nothing to wait for


def _boundary_before(buf: bytes, stop: int, floor: int) -> int:
    """``stop`` moved back over at most 3 continuation bytes (never to ``floor`` or below)."""
    for _ in range(3):
        if stop >= len(buf) or stop - 1 <= floor or buf[stop] & 0xC0 != 0x80:
            break
        stop -= 1
    return stop


def _line_cut(
    seq: AnyStr, newline: AnyStr, start: int, cut: int, end: int, *, run_open: bool
) -> int:
    """Where to end the piece ``seq[start:cut]`` (``cut`` already fits the size bound).

    With a run open, cut after the last newline so the run closes on a piece ending in newline.
    Without one, prefer a newline when a size cut is needed anyway and it keeps half the piece.
    """
    if not run_open and cut == end:
        return cut
    if seq.endswith(newline, start, cut):
        return cut
    last = seq.rfind(newline, start, cut)
    if last < 0:
        return cut
    if run_open or 2 * (last + 1 - start) >= cut - start:
        return last + 1
    return cut


class OutputChunker:
    """Stateful cutter for one stream; see the module docstring for the contract."""

    __slots__ = ("_b64_step", "_max", "_pending", "_run", "stream")

    def __init__(self, stream: Stream, *, max_bytes: int = OUTPUT_CHUNK_MAX_BYTES) -> None:
        if max_bytes < _MIN_MAX_BYTES:
            raise ValueError(f"max_bytes must be at least {_MIN_MAX_BYTES}")
        self.stream: Stream = stream
        self._max = max_bytes
        self._b64_step = (max_bytes // 4) * 3  # raw bytes whose base64 fits max_bytes
        self._pending = b""  # start of a character cut by the last read (<= 3 bytes)
        self._run = 0  # pieces emitted so far in the open run; 0 = no run open

    @property
    def pending(self) -> bytes:
        """Bytes held back until the next feed completes their character."""
        return self._pending

    def feed(self, data: bytes) -> list[OutputPiece]:
        """Pieces for ``data``; an incomplete character at its end is held back."""
        buf = self._pending + data if self._pending else data
        out: list[OutputPiece] = []
        try:
            # Fast path: one C decode; final=False stops before a trailing partial character.
            text, used = _decode_utf8(buf, "strict", False)
        except UnicodeDecodeError:
            used = len(buf) - _partial_tail(buf)
            self._emit_mixed(buf, used, out)
        else:
            if text:
                self._emit_text(text, out)
        self._pending = buf[used:] if used < len(buf) else b""
        return out

    def flush(self) -> list[OutputPiece]:
        """At EOF: emit held bytes and close an open run. The chunker can then be reused."""
        out: list[OutputPiece] = []
        if self._pending:
            pending, self._pending = self._pending, b""
            self._emit_mixed(pending, len(pending), out)
        if self._run:
            if out:
                # The last piece is truncated (the run is open): it becomes the run's end.
                last = out[-1]
                index = last.chunk_index or 0
                out[-1] = OutputPiece(
                    self.stream,
                    last.data,
                    truncated=False,
                    # A line that starts and ends in this one piece is not a run.
                    chunk_index=index if index else None,
                    total_chunks=index + 1 if index else None,
                    encoding=last.encoding,
                )
            else:
                out.append(
                    OutputPiece(self.stream, "", chunk_index=self._run, total_chunks=self._run + 1)
                )
            self._run = 0
        return out

    # --- internals -----------------------------------------------------------------------

    def _piece(
        self, data: str, ends_with_newline: bool, encoding: Literal["base64"] | None
    ) -> OutputPiece:
        index = self._run
        if ends_with_newline:
            self._run = 0
            if index:
                return OutputPiece(
                    self.stream, data, chunk_index=index, total_chunks=index + 1, encoding=encoding
                )
            return OutputPiece(self.stream, data, encoding=encoding)
        self._run = index + 1
        return OutputPiece(self.stream, data, truncated=True, chunk_index=index, encoding=encoding)

    def _emit_text(self, text: str, out: list[OutputPiece]) -> None:
        end = len(text)
        # JSON is never shorter than the text: a read longer than a piece (reads are up to
        # 1 MiB) is not encoded whole just to learn that it does not fit.
        size = _json_size(text) if end <= self._max else 0
        fits_all = end <= self._max and size <= self._max  # then every slice fits too
        chars_per_piece = max(1, int(end * self._max / size)) if size else min(end, self._max)
        start = 0
        while start < end:
            if fits_all:
                cut = end
            else:
                cut = min(end, start + chars_per_piece)
                piece_size = _json_size(text[start:cut])
                while piece_size > self._max:
                    # Proportional shrink; a single character always fits (<= 6 bytes).
                    cut = start + max(1, (cut - start) * self._max // piece_size - 1)
                    piece_size = _json_size(text[start:cut])
                if cut < end:
                    # The next piece starts from the density seen here (output that needs
                    # escapes, such as short lines, keeps needing them): one encode a piece.
                    chars_per_piece = max(1, (cut - start) * self._max // piece_size)
            cut = _line_cut(text, "\n", start, cut, end, run_open=self._run > 0)
            data = text[start:cut] if start or cut < end else text
            out.append(self._piece(data, data.endswith("\n"), None))
            start = cut

    def _emit_binary(self, raw: bytes, out: list[OutputPiece]) -> None:
        end = len(raw)
        start = 0
        while start < end:
            cut = _line_cut(
                raw, b"\n", start, min(end, start + self._b64_step), end, run_open=self._run > 0
            )
            chunk = raw[start:cut]
            out.append(
                self._piece(
                    base64.b64encode(chunk).decode("ascii"), chunk.endswith(b"\n"), "base64"
                )
            )
            start = cut

    def _emit_mixed(self, buf: bytes, end: int, out: list[OutputPiece]) -> None:
        """Emit ``buf[:end]``, which holds invalid UTF-8: valid stretches as text, the rest base64.

        Decoding per invalid byte would cost a Python step (and an exception) per byte of random
        binary, so the scan goes by blocks: one stray byte inside text costs one step, but once
        two invalid sequences come less than :data:`MIN_TEXT_RUN` bytes apart, the rest of the
        block is taken as binary without looking. Text resumes at the next valid block.
        """
        view = memoryview(buf)
        spans: list[_Span] = []
        position = 0
        while position < end:
            stop = min(end, position + _SCAN_BLOCK)
            in_binary = bool(spans) and not spans[-1].text
            try:
                _, used = _decode_utf8(view[position:stop], "strict", stop == end)
            except UnicodeDecodeError as exc:
                valid = position + exc.start
                if exc.start >= MIN_TEXT_RUN or not in_binary:
                    # A long valid stretch, or text interrupted by a stray invalid sequence.
                    _add_span(spans, position, valid, text=exc.start >= MIN_TEXT_RUN or bool(spans))
                    _add_span(spans, valid, position + exc.end, text=False)
                    position += exc.end
                else:
                    # Binary again: skip the block, ending it on a character boundary so text
                    # that follows (in any script) is recognised by the next block's decode.
                    stop = _boundary_before(buf, stop, position)
                    _add_span(spans, position, stop, text=False)
                    position = stop
                continue
            _add_span(spans, position, position + used, text=used >= MIN_TEXT_RUN or not in_binary)
            position += used
        for span in spans:
            if span.text:
                self._emit_text(str(view[span.start : span.end], "utf-8"), out)
            else:
                self._emit_binary(buf[span.start : span.end], out)


@dataclass(slots=True)
class _Span:
    text: bool
    start: int
    end: int


def _add_span(spans: list[_Span], start: int, end: int, *, text: bool) -> None:
    if start >= end:
        return
    if spans and spans[-1].text == text:
        spans[-1].end = end  # spans are contiguous: extend the open one
    else:
        spans.append(_Span(text, start, end))
