"""StringTable: many strings as one UTF-8 byte array plus offsets (compact, memory-mappable, no pickle).

Besides reading strings back, tables are combined without decoding them: concatenated, reordered,
and joined pairwise ("cardiac" + " " + "arrest"), with numpy over the bytes.

A table whose bytes are a memory-mapped file (a large saved index) reads the strings it is asked
for with os.pread: touching a mapped page maps its neighbours too (the kernel's fault-around,
64 KB), so citing a thousand passages of a million made 80 MB of unread titles resident.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from emsqa.arrays import FileReader

__all__ = ["StringTable"]

_OF_BATCH = 2_000  # strings encoded at a time by StringTable.of (bounds its temporaries)
_GATHER_BYTES = 2**20  # bytes moved at a time when reordering or joining: their int64
# positions, a few copies of them, are the temporaries (16 MB of bytes made 0.5 GB of them)


class StringTable:
    """Many strings as one UTF-8 byte array plus offsets: compact, memory-mappable, no pickle."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self.blob = blob
        self.offsets = offsets
        self._file: FileReader | None = None  # the blob's file, read from (see on_file)

    @classmethod
    def on_file(cls, blob: np.ndarray, offsets: np.ndarray) -> StringTable:
        """A table over `blob`, a memory map just opened by np.load, that reads single strings
        and ranges from its file (the map still serves whole-table work: saving, combining)."""
        table = cls(blob, offsets)
        table._file = FileReader.of(blob)
        return table

    def bytes_at(self, a: int, b: int) -> bytes:
        """Bytes a..b of the blob (a range of whole strings, or one string)."""
        if self._file is None:
            return self.blob[a:b].tobytes()
        return self._file.read(a, b - a)

    @classmethod
    def of(cls, strings: Sequence[str]) -> StringTable:
        """A table of `strings`, encoded a batch at a time into one buffer sized beforehand (a
        growing buffer would hold up to twice the text while it is copied along)."""
        sizes = np.empty(len(strings), dtype=np.int64)
        for a in range(0, len(strings), _OF_BATCH):
            batch = strings[a : a + _OF_BATCH]
            joined = "".join(batch)
            lengths = np.fromiter(map(len, batch), np.int64, len(batch))
            if joined.isascii():  # characters are bytes
                sizes[a : a + len(batch)] = lengths
            else:  # each string's bytes: where its characters start in the batch's UTF-8
                raw = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
                starts = np.append(np.flatnonzero((raw & 0xC0) != 0x80), len(raw))
                sizes[a : a + len(batch)] = np.diff(starts[np.cumsum(lengths)], prepend=0)
        offsets = np.zeros(len(strings) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        blob = np.empty(int(offsets[-1]), dtype=np.uint8)
        for a in range(0, len(strings), _OF_BATCH):
            b = min(a + _OF_BATCH, len(strings))
            encoded = "".join(strings[a:b]).encode("utf-8")
            blob[offsets[a] : offsets[b]] = np.frombuffer(encoded, dtype=np.uint8)
        return cls(blob, offsets)

    @classmethod
    def concat(cls, tables: Sequence[StringTable]) -> StringTable:
        """The strings of `tables`, one table after the other."""
        blobs, offsets, base = [], [np.zeros(1, dtype=np.int64)], 0
        for t in tables:
            blobs.append(np.asarray(t.blob))
            offsets.append(np.asarray(t.offsets[1:]) - t.offsets[0] + base)
            base += int(t.offsets[-1] - t.offsets[0])
        blob = np.concatenate(blobs) if blobs else np.empty(0, dtype=np.uint8)
        return cls(blob.astype(np.uint8, copy=False), np.concatenate(offsets))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def raw(self, i: int) -> bytes:
        """String `i` as its UTF-8 bytes."""
        return self.bytes_at(self.offsets.item(i), self.offsets.item(i + 1))

    def __getitem__(self, i: int) -> str:
        return self.raw(i).decode("utf-8")

    def strings(self, a: int, b: int) -> list[str]:
        """Strings a, a + 1, ..., b - 1, decoded at once (one bytes object, not one a string)."""
        lo = self.offsets.item(a)
        raw = self.bytes_at(lo, self.offsets.item(b))
        cuts = (self.offsets[a : b + 1] - lo).tolist()
        if raw.isascii():  # characters are bytes: slice one decoded string
            text = raw.decode("ascii")
            return [text[x:y] for x, y in itertools.pairwise(cuts)]
        return [raw[x:y].decode("utf-8") for x, y in itertools.pairwise(cuts)]

    def take(self, order: np.ndarray) -> StringTable:
        """A table of strings order[0], order[1], ... of this one."""
        order = np.asarray(order, dtype=np.int64)
        starts = self.offsets[:-1][order]
        return self._assemble([(starts, self.offsets[1:][order] - starts)])

    def joined(self, first: np.ndarray, second: np.ndarray, sep: bytes = b" ") -> StringTable:
        """A table of strings first[i] + sep + second[i] (numbers of strings of this table)."""
        first = np.asarray(first, dtype=np.int64)
        second = np.asarray(second, dtype=np.int64)
        starts, ends = self.offsets[:-1], self.offsets[1:]
        pieces = [(starts[first], ends[first] - starts[first])]
        if sep:
            sep_at = len(self.blob)  # sep is appended to the blob for the gather
            pieces.append((np.full(len(first), sep_at), np.full(len(first), len(sep))))
        pieces.append((starts[second], ends[second] - starts[second]))
        return self._assemble(pieces, extra=sep)

    def _assemble(
        self, pieces: list[tuple[np.ndarray, np.ndarray]], extra: bytes = b""
    ) -> StringTable:
        """Strings made of pieces (start, length) of the blob (+ `extra` after it), gathered in
        slices of strings so the byte positions never all exist at once."""
        source = np.asarray(self.blob)
        if extra:
            source = np.concatenate([source, np.frombuffer(extra, dtype=np.uint8)])
        n = len(pieces[0][0])
        sizes = sum(length for _, length in pieces)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        blob = np.empty(int(offsets[-1]), dtype=np.uint8)
        average = max(1, int(offsets[-1]) // max(n, 1))
        step = max(1, _GATHER_BYTES // average)
        for a in range(0, n, step):
            b = min(n, a + step)
            at = int(offsets[a])
            cursor = offsets[a:b] - at  # each string's next free byte
            for starts, lengths in pieces:
                part = lengths[a:b]
                total = int(part.sum())
                if total:
                    within = np.arange(total, dtype=np.int64) - np.repeat(
                        np.cumsum(part) - part, part
                    )
                    blob[at + np.repeat(cursor, part) + within] = source[
                        np.repeat(starts[a:b], part) + within
                    ]
                cursor = cursor + part
        return StringTable(blob, offsets)
