"""The store pipeline: sealed blocks into stored segments, then into their partition's index.

Why this module exists: storing is where a backup's crash consistency and
its memory bound are decided, away from the consuming thread.

- **Encoding** (:meth:`StorePipeline.encode`): each sealed block goes through
  the block transform chain (compression) on a compression thread; the raw
  buffer then goes back to the encoders for reuse. A chain with nothing to
  do keeps the block's buffer and costs no thread hop. With zstd-stream
  (``restart_blocks``), a segment's blocks share one zstd context
  (:mod:`libkb.format.zstream`), one block after another, while the blocks
  of different partitions (and segments) still compress in parallel. A
  compression thread that takes a context works through the blocks queued
  for it (up to :data:`STREAM_RUN` at a time) before it moves on: a context
  is ~9 MiB of window and tables, and moving between eight of them every
  block left them out of the CPU caches, which cost 70 % more CPU on CDC
  records (bench/README.rst, "Compressing a context's blocks together").
  A context holds up to its 8 MiB window: at most :func:`stream_contexts`
  are kept (the least recently used partition's is dropped, and its next
  block starts a new frame), so many partitions never hold a window each.
- **Ordered commits per partition**: a partition's stores run one after
  another (each waits for the one queued before it), and each stores its
  segment before the index that lists it. So an index always lists a
  gap-free run of stored segments, a failed segment upload leaves no index
  entry (nor any after it), and a missing range is indexed only after the
  segments before it.
- **Memory**: a sealed block holds its raw size of the
  :class:`~libkb.backup.budget.ByteBudget` until it is encoded, then its
  stored size until storage has taken it (streamed past it by as many bytes
  as the backend may hold, ``stream_hold_bytes``); its segment's
  :class:`~libkb.backup.budget.SegmentCharge` counts both.
- **Fencing**: every segment and index write first asks the run's
  :class:`~libkb.backup.ownership.PartitionOwnership`.
- **Storage outages**: a store that fails is tried again until
  ``backup.storage_outage_timeout_secs`` (:mod:`libkb.storage.outage`),
  each retry fenced as well; the blocks wait in the budget meanwhile, and
  the consumer pauses once it is full (:mod:`libkb.backup.builder`).
- **Retention** (:meth:`StorePipeline.prune`): a cut of a partition's oldest
  segments (``backup.retention``) is queued like a store, so it sees the
  index as the stores before it left it and never races them; its index is
  stored before its segments are deleted (:mod:`libkb.retention.apply`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from libkb.backup.budget import ByteBudget, SegmentCharge
from libkb.backup.envelope import Envelope
from libkb.backup.lease import LeaseLostError
from libkb.backup.ownership import PartitionOwnership
from libkb.errors import LibkbError
from libkb.format.encryption import ALGORITHM, FLAG_ENCRYPTED, BlockEncryption, SegmentKeys
from libkb.format.models import MissingRange, PartitionIndex, SegmentEntry, index_key, segment_key
from libkb.format.segment import (
    CODEC_NAMES,
    CODEC_ZSTD_STREAM,
    Block,
    RawBlock,
    SegmentFooter,
    SegmentWriter,
    chain_codec,
)
from libkb.format.transforms import BlockContext, TransformChain
from libkb.format.zstream import (
    DEFAULT_RESTART_BLOCKS,
    WINDOW_LOG,
    AloneEncoder,
    HistoryVerdict,
    StreamEncoder,
)
from libkb.metrics import RunMetrics
from libkb.storage import BytesLike, StorageBackend

if TYPE_CHECKING:
    from libkb.retention import PartitionCut

log = logging.getLogger("libkb.backup")

# Raw block buffers kept for reuse (about 1 MiB each): enough for the encoders
# to find one ready while the compression threads work through the queue.
_SPARE_BUFFERS = 16
#: Blocks a compression thread encodes in one context before it lets other partitions' turn come.
STREAM_RUN = 8


def stream_contexts(max_bytes_in_flight: int) -> int:
    """How many zstd-stream contexts a run keeps: a window each per ``max_bytes_in_flight``
    (with the zstd tables, about ``max_bytes_in_flight`` again: 8 by default)."""
    return max(1, max_bytes_in_flight // (1 << WINDOW_LOG))


class PartitionLane:
    """One partition's place in the pipeline: its index and the last store queued for it."""

    __slots__ = ("index", "last", "lock", "partition", "topic")

    def __init__(self, topic: str, partition: int, index: PartitionIndex) -> None:
        self.topic = topic
        self.partition = partition
        self.index = index
        self.lock = threading.Lock()
        #: The partition's latest queued store; the next one waits for it.
        self.last: Future[None] | None = None

    def snapshot(self) -> PartitionIndex:
        """A copy of the index as stored so far (the upload threads keep changing the original)."""
        with self.lock:
            index = self.index
            return PartitionIndex(
                index.topic,
                index.partition,
                list(index.segments),
                list(index.missing),
                index.format_version,
                list(index.pruned),
            )


class StorePipeline:
    """Encodes blocks, then stores segments and indexes in order per partition, within a byte budget."""

    def __init__(
        self,
        backend: StorageBackend,
        backup_id: str,
        ownership: PartitionOwnership,
        chain: TransformChain,
        *,
        compression_threads: int,
        upload_threads: int,
        max_bytes_in_flight: int,
        metrics: RunMetrics,
        restart_blocks: int | None = None,
        level: int = 3,
        envelope: Envelope | None = None,
    ) -> None:
        """``restart_blocks``: zstd-stream at ``level`` with a restart point every that many
        blocks (``chain`` must then be empty); None: ``chain`` transforms each block alone.
        ``envelope``: encrypt every block's payload after its compression (either kind)."""
        self.budget = ByteBudget(max_bytes_in_flight)
        #: Raw block buffers handed back after encoding, for the block encoders to reuse.
        self.spare: deque[bytearray] = deque(maxlen=_SPARE_BUFFERS)
        self.segments = 0
        self.stored_bytes = 0
        #: Records in the segments stored so far.
        self.stored_records = 0
        self._backend = backend
        self._backup_id = backup_id
        self._ownership = ownership
        self._codec = chain_codec(chain) if restart_blocks is None else CODEC_ZSTD_STREAM
        self._restart_blocks = restart_blocks
        self._level = level
        #: Per partition, the open segment's zstd-stream encoder and the blocks queued for it.
        self._streams: OrderedDict[tuple[str, int], _StreamQueue] = OrderedDict()
        self._max_streams = stream_contexts(max_bytes_in_flight)
        #: Per partition, what its last probe found (kept across its segments).
        self._verdicts: defaultdict[tuple[str, int], HistoryVerdict] = defaultdict(HistoryVerdict)
        #: Each compression thread's :class:`AloneEncoder` (made on its first such block).
        self._alone = threading.local()
        #: Encryption (``envelope``): a fresh data key per segment, made on its first block; the
        #: chain's last transform (with zstd-stream the chain's only one, after the stream encoder).
        self._envelope = envelope
        self._keys = SegmentKeys() if envelope is not None else None
        if self._keys is not None:
            chain = TransformChain([*chain.transforms, BlockEncryption(backup_id, self._keys)])
        self._chain = chain
        #: The codec's name as index entries give it (``zstd-stream``, ``zstd``, ``none``).
        self.codec_name = CODEC_NAMES[self._codec]
        #: The compression the metrics' labels name (``zstd``: zstd-stream is zstd too).
        self.algorithm = "zstd" if restart_blocks is not None else self.codec_name
        self._hold = backend.stream_hold_bytes
        self._metrics = metrics
        self._compressed_bytes = 0
        self._raw_bytes = 0
        self._stats_lock = threading.Lock()
        self._pending: list[Future[None]] = []
        self._compress_pool = ThreadPoolExecutor(compression_threads, "libkb-compress")
        self._upload_pool = ThreadPoolExecutor(upload_threads, "libkb-upload")

    # -- called by the consuming thread ------------------------------------------------

    def encode(self, raw: RawBlock, context: BlockContext, charge: SegmentCharge) -> Future[Block]:
        """The block as it will be stored, encoded on a compression thread.

        ``charge`` holds the block's raw size; encoding shrinks it to the stored size.
        """
        if self._restart_blocks is not None:
            return self._encode_stream(raw, context, charge)
        if not self._chain:  # nothing to transform: no thread hop, the block keeps its buffer
            done: Future[Block] = Future()
            done.set_result(raw.transform(self._chain, context))
            charge.done(len(raw.data), len(raw.data))
            return done
        return self._compress_pool.submit(self._encode_and_recycle, raw, context, charge)

    def store_segment(
        self, lane: PartitionLane, base: int, end: int, blocks: list[Future[Block]], charge: SegmentCharge
    ) -> None:
        """Queue the segment ``[base, end)`` of ``blocks``: stored, then indexed; ``charge`` settled after."""
        self._streams.pop((lane.topic, lane.partition), None)  # its last task holds the encoder till done
        self._queue(lane, self._store, base, end, blocks, charge)

    def record_missing(self, lane: PartitionLane, lost: MissingRange) -> None:
        """Queue ``lost`` for the partition's index, after the segments queued before it."""
        self._queue(lane, self._index_missing, lost)

    def prune(self, lane: PartitionLane, cut: PartitionCut, *, when_ms: int, reason: str) -> None:
        """Queue ``cut`` of the partition's oldest segments, after the stores queued before it.

        A cut that fails (storage) is logged and counted, never the run's
        error: the next prune makes it again. A lost lease still ends the run.
        """
        self._queue(lane, self._prune, cut, when_ms, reason)

    def store_index(
        self, lane: PartitionLane, what: str, change: Callable[[PartitionIndex], None] | None = None
    ) -> bytes:
        """Apply ``change`` to the partition's index and store it, fenced by ownership; its bytes."""
        with lane.lock:
            if change is not None:
                change(lane.index)
            data = lane.index.to_json()
        self._ownership.check(lane.topic, lane.partition, f"{what} is not indexed")
        self._backend.put(index_key(self._backup_id, lane.topic, lane.partition), data)
        return data

    def check(self) -> None:
        """Re-raise in the calling thread the error of a store that failed."""
        done = [f for f in self._pending if f.done()]
        for f in done:
            f.result()
        if done:
            self._pending = [f for f in self._pending if not f.done()]

    def wait(self, *, quiet: bool = False) -> None:
        """Wait for every queued store; then raise the first error unless ``quiet``.

        All of them, even after one failed: the stores queued behind it are still
        giving their budget back, and nothing may run after the wait that they race with.
        """
        first: BaseException | None = None
        for f in list(self._pending):
            try:
                f.result()
            except BaseException as exc:
                first = first or exc
        self._pending = []
        if first is not None and not quiet:
            raise first

    def close(self) -> None:
        """Stop the threads; stores not yet started are cancelled."""
        self._compress_pool.shutdown(cancel_futures=True)
        self._upload_pool.shutdown(cancel_futures=True)

    def _queue(self, lane: PartitionLane, work: Callable[..., None], *args: object) -> None:
        lane.last = self._upload_pool.submit(work, lane, lane.last, *args)
        self._pending.append(lane.last)

    # -- compression and upload threads ------------------------------------------------

    def _encode_stream(self, raw: RawBlock, context: BlockContext, charge: SegmentCharge) -> Future[Block]:
        tp = (context.topic, context.partition)
        queue = self._streams.get(tp)
        assert self._restart_blocks is not None
        verdict = self._verdicts[tp]
        verdict.passed()
        if context.block_index % self._restart_blocks == 0 or queue is None:
            # Intervals share nothing: each has a context of its own, and the last one's
            # queued blocks may still be compressing on another thread meanwhile.
            queue = _StreamQueue(StreamEncoder(self._level, self._restart_blocks, verdict))
            if verdict.skip_probe():
                queue.encoder.assume_alone(context.block_index)
        self._streams[tp] = queue
        self._streams.move_to_end(tp)  # still in use: not the context to drop next
        if len(self._streams) > self._max_streams:
            self._streams.popitem(last=False)  # its next block starts a frame of its own
        if queue.encoder.alone_at(context.block_index):
            # The interval's probe found history of no use: the block is a frame of its own,
            # compressed by whichever thread is free (a single partition keeps both busy).
            return self._compress_pool.submit(self._alone_and_recycle, raw, context, charge)
        done: Future[Block] = Future()
        if queue.put((raw, context, charge, done)):
            self._submit_drain(queue)
        return done

    def _submit_drain(self, queue: _StreamQueue) -> None:
        # A drain cancelled by close() cancels the blocks it would have encoded (their stores end).
        self._compress_pool.submit(self._drain_stream, queue).add_done_callback(queue.drain_ended)

    def _drain_stream(self, queue: _StreamQueue) -> None:
        """Encode up to :data:`STREAM_RUN` of the blocks queued for one context, in order."""
        for _ in range(STREAM_RUN):
            item = queue.take()
            if item is None:
                return
            raw, context, charge, done = item
            if not done.set_running_or_notify_cancel():
                queue.failed = queue.failed or RuntimeError("an earlier block of the segment was cancelled")
                continue
            try:
                done.set_result(self._stream_and_recycle(raw, context, charge, queue))
            except BaseException as exc:
                done.set_exception(exc)
        if queue.keep_going():
            try:
                self._submit_drain(queue)  # behind the other contexts' turn
            except RuntimeError:  # the pool was shut down meanwhile: nothing will encode them
                queue.cancel_rest()

    def _stream_and_recycle(
        self, raw: RawBlock, context: BlockContext, charge: SegmentCharge, queue: _StreamQueue
    ) -> Block:
        if queue.failed is not None:
            raise queue.failed  # the block before it failed: so does the segment
        encoder: StreamEncoder | AloneEncoder = queue.encoder
        if queue.encoder.alone_at(context.block_index):
            # Queued before the probe found history of no use: the same frame as the context
            # would make of it, without a fresh compression object per block.
            encoder = self._thread_alone_encoder()
        try:
            block = raw.stream(encoder, context, self._chain)
        except Exception as exc:
            queue.failed = exc
            raise
        return self._recycle(raw, block, charge)

    def _alone_and_recycle(self, raw: RawBlock, context: BlockContext, charge: SegmentCharge) -> Block:
        return self._recycle(raw, raw.stream(self._thread_alone_encoder(), context, self._chain), charge)

    def _thread_alone_encoder(self) -> AloneEncoder:
        encoder: AloneEncoder | None = getattr(self._alone, "encoder", None)
        if encoder is None:
            encoder = self._alone.encoder = AloneEncoder(self._level)
        return encoder

    def _recycle(self, raw: RawBlock, block: Block, charge: SegmentCharge) -> Block:
        if isinstance(raw.data, bytearray):
            self.spare.append(raw.data)
        charge.done(block.raw_len, len(block.payload))
        return block

    def _encode_and_recycle(self, raw: RawBlock, context: BlockContext, charge: SegmentCharge) -> Block:
        block = raw.transform(self._chain, context)
        if isinstance(raw.data, bytearray) and block.payload is not raw.data:
            self.spare.append(raw.data)  # only the stored bytes are needed now; an encoder reuses the buffer
            charge.done(block.raw_len, len(block.payload))
        else:
            charge.done(block.raw_len, block.raw_len)
        return block

    def _store(
        self,
        lane: PartitionLane,
        prev: Future[None] | None,
        base: int,
        end: int,
        blocks: list[Future[Block]],
        charge: SegmentCharge,
    ) -> None:
        try:
            if prev is not None:
                prev.result()  # keep each partition's segments in offset order
            flags = FLAG_ENCRYPTED if self._envelope is not None else 0
            # Restart intervals (index entries list them): the stream encoder's, else every 128 blocks.
            every = self._restart_blocks or DEFAULT_RESTART_BLOCKS
            writer = SegmentWriter(
                lane.topic, lane.partition, base, self._codec, _now_ms(), flags, restart_blocks=every
            )
            key = segment_key(self._backup_id, lane.topic, lane.partition, base)
            # A successor would store its own segment at this key: never overwrite it.
            self._ownership.check(lane.topic, lane.partition, f"segment {key} is not stored")
            sealed = (
                partial(self._store_key_object, key, (lane.topic, lane.partition, base)) if flags else None
            )
            stream = _SegmentStream(writer, blocks, charge, self._hold, sealed)
            self._backend.put_stream(key, stream.chunks(end))
            encryption = ALGORITHM if flags else None
            entry = SegmentEntry.from_footer(
                key, base, stream.footer(), writer.size, self.codec_name, encryption, writer.restarts
            )
            data = self.store_index(lane, key, lambda index: index.segments.append(entry))
            self._account(writer, len(data))
        finally:
            charge.settle()

    def _store_key_object(self, segment: str, place: tuple[str, int, int], footer: bytes) -> None:
        """The segment's key object, once every block is encrypted and the footer is known."""
        assert self._envelope is not None and self._keys is not None
        data_key = self._keys.take(*place)
        self._envelope.store(segment, place, data_key, self._envelope.wrap(segment, data_key), footer)

    def _index_missing(self, lane: PartitionLane, prev: Future[None] | None, lost: MissingRange) -> None:
        if prev is not None:
            prev.result()  # the segments before the missing range are stored and indexed first
        what = f"the missing range {lost.start}-{lost.end - 1}"
        self.store_index(lane, what, lambda index: index.missing.append(lost))

    def _prune(
        self, lane: PartitionLane, prev: Future[None] | None, cut: PartitionCut, when_ms: int, reason: str
    ) -> None:
        if prev is not None:
            prev.result()
        from libkb.retention import apply_cut  # only runs with backup.retention prune

        what = f"the pruning of {len(cut.segments)} segment(s) of {lane.topic}[{lane.partition}]"
        try:
            apply_cut(
                self._backend,
                cut,
                lambda change: self.store_index(lane, what, change),
                when_ms=when_ms,
                reason=reason,
                metrics=self._metrics,
                backup_id=self._backup_id,
            )
        except LeaseLostError:
            raise
        except ValueError as exc:
            log.info("retention skipped a cut planned on an older index: %s", exc)
        except LibkbError as exc:
            self._metrics.errors.labels(self._backup_id, type(exc).__name__).inc()
            log.warning("retention could not prune %s (the next prune retries): %s", what, exc)

    def _account(self, writer: SegmentWriter, index_bytes: int) -> None:
        payload_bytes = writer.size - len(writer.header)
        with self._stats_lock:
            self.segments += 1
            self.stored_bytes += writer.size
            self.stored_records += writer.record_count
            self._compressed_bytes += payload_bytes
            self._raw_bytes += writer.raw_bytes
            ratio = self._raw_bytes / self._compressed_bytes if self._compressed_bytes else 0.0
        metrics, backup_id, algorithm = self._metrics, self._backup_id, self.algorithm
        metrics.segments.labels(backup_id).inc()
        metrics.backup_records_stored.labels(backup_id).inc(writer.record_count)
        metrics.backup_bytes_stored.labels(backup_id).inc(writer.size)
        metrics.storage_write_bytes.labels(self._backend.name, backup_id).inc(writer.size + index_bytes)
        metrics.compressed_bytes.labels(algorithm, backup_id).inc(payload_bytes)
        metrics.compression_ratio.labels(algorithm, backup_id).set(ratio)


class _StreamQueue:
    """One zstd-stream context and the blocks queued for it; at most one compression thread drains it."""

    __slots__ = ("_draining", "_items", "_lock", "encoder", "failed")

    def __init__(self, encoder: StreamEncoder) -> None:
        self.encoder = encoder
        self._items: deque[tuple[RawBlock, BlockContext, SegmentCharge, Future[Block]]] = deque()
        self._lock = threading.Lock()
        self._draining = False
        #: The error of a block that failed: every later block of the segment fails with it.
        self.failed: Exception | None = None

    def put(self, item: tuple[RawBlock, BlockContext, SegmentCharge, Future[Block]]) -> bool:
        """Queue ``item``; True: nothing drains the queue, a drain must be submitted."""
        with self._lock:
            self._items.append(item)
            start, self._draining = not self._draining, True
            return start

    def take(self) -> tuple[RawBlock, BlockContext, SegmentCharge, Future[Block]] | None:
        """The next block, or None (and the drain ends) when none is queued."""
        with self._lock:
            if self._items:
                return self._items.popleft()
            self._draining = False
            return None

    def drain_ended(self, task: Future[None]) -> None:
        """A drain that never ran (the pool shut down): its blocks are cancelled."""
        if task.cancelled():
            self.cancel_rest()

    def cancel_rest(self) -> None:
        """Cancel the queued blocks (their segments' stores end with CancelledError)."""
        with self._lock:
            items, self._items, self._draining = self._items, deque(), False
        for *_, done in items:
            done.cancel()

    def keep_going(self) -> bool:
        """After a full run: whether blocks are still queued (the drain is submitted again)."""
        with self._lock:
            self._draining = bool(self._items)
            return self._draining


class _SegmentStream:
    """One segment's bytes as storage pulls them; gives each block's budget back once storage took it."""

    def __init__(
        self,
        writer: SegmentWriter,
        blocks: list[Future[Block]],
        charge: SegmentCharge,
        hold: int,
        sealed: Callable[[bytes], None] | None = None,
    ) -> None:
        self.writer = writer
        #: Called with the footer's bytes before they are handed to storage (the key object).
        self._sealed = sealed
        self._blocks = blocks
        self._charge = charge
        self._hold = hold
        self._footer: SegmentFooter | None = None

    def chunks(self, end: int) -> Iterator[BytesLike]:
        """Header, blocks as they finish encoding, footer (a generator: storage reads it once)."""
        writer, blocks = self.writer, self._blocks
        yield writer.header
        pulled = 0
        taken: deque[tuple[int, int]] = deque()  # (raw bytes, bytes pulled once written)
        while blocks:
            block = blocks.pop(0).result()  # the list must not keep the block alive
            head, payload = writer.add_block(block)
            if head:
                yield head
                yield payload
            pulled += len(head) + len(payload)
            # What the block still holds: its stored size, or its raw size if that is smaller.
            taken.append((min(block.raw_len, len(block.payload)), pulled))
            del block, head, payload
            # Resumed: storage has taken the block. Give its budget back once the
            # backend's buffers (``hold`` bytes) have moved past it.
            while taken and pulled - taken[0][1] >= self._hold:
                self._charge.shrink(taken.popleft()[0])
        footer, data = writer.finish(end)
        if self._sealed is not None:
            self._sealed(data)  # before the segment can be committed: a stored segment has its key
        self._footer = footer
        yield data

    def footer(self) -> SegmentFooter:
        if self._footer is None:
            raise RuntimeError(f"storage stopped reading segment {self.writer.base_offset} before its end")
        return self._footer


def _now_ms() -> int:
    return int(time.time() * 1000)
