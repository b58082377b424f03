import CQueueGraphTrace
/// What a processor can do while it runs: send buffers on, share, release
/// and acquire them. One per queue of a running graph.
///
/// Threading: only the processor's own scheduler thread may use it, and only
/// from inside a `BufferProcessor` call.
public final class ProcessContext: @unchecked Sendable {
    /// The queue's address, set once by the queue; the queue owns its context.
    @exclusivity(unchecked) var queueAddress: UnsafeRawPointer?
    /// Set by an abandoning stop: sends are refused and buffers released as abandoned.
    @exclusivity(unchecked) @_spi(Runtime) public internal(set) var abandoning = false
    /// The queue index that sent the buffer being processed (-1: external input).
    @exclusivity(unchecked) @_spi(Runtime) public internal(set) var sender: Int32 = -1

    init() {}

    /// Runs `body` with the queue, borrowed (no reference counting on the hot path).
    @inline(__always)
    func withQueue<R>(_ body: (RunningQueue) -> R) -> R {
        Unmanaged<RunningQueue>.fromOpaque(queueAddress.unsafelyUnwrapped)._withUnsafeGuaranteedRef(body)
    }

    /// The queue's name.
    public var queueName: String { withQueue { $0.name } }
    /// How many outgoing pads the queue has.
    public var outPadCount: Int { withQueue { $0.outs.count } }
    /// `CLOCK_MONOTONIC` in nanoseconds.
    public var now: UInt64 { monotonicNanoseconds() }

    /// Sends a buffer out of `pad`, handing over the processor's hold unless
    /// the result is `.full` (a `default` queue at capacity: the hold stays
    /// with the caller, who keeps the buffer and tries again in a later call).
    /// With `dropWhenFull`, a full `default` queue counts the buffer as a
    /// `taildrop` on arrival and releases it (`.dropped(.taildrop)`): for a
    /// sender that cannot keep it.
    @discardableResult
    public func sendTo(_ pad: Int, _ buffer: Buffer, dropWhenFull: Bool = false) -> PushResult {
        withQueue { queue in
            precondition(pad >= 0 && pad < queue.outs.count, "queue '\(queue.name)' has no pad \(pad)")
            if abandoning {
                finishedWith(buffer, queue: queue)
                buffer.dropHold(fate: .abandoned)
                return .closed
            }
            var result = queue.outs.with(pad) { $0.push(buffer, from: Int32(queue.index), fromGroup: queue.group) }
            if result == .full && dropWhenFull {
                queue.outs.with(pad) { $0.refuse(buffer, from: Int32(queue.index)) }
                result = .dropped(.taildrop)
            }
            if result != .full { finishedWith(buffer, queue: queue) }
            return result
        }
    }

    /// Adds a hold so that the same buffer can be sent to several pads (a tee):
    /// call it once per extra `sendTo`. A shared buffer is read-only.
    public func share(_ buffer: Buffer) { buffer.addHold() }

    /// Whether a buffer sent to `pad` now would be taken: false only while
    /// a `default` queue there is full (a dropping queue always takes).
    /// For a processor that sends between invocations (`ThreadLifecycle`),
    /// which keeps what does not fit and is woken when room is made.
    public func hasRoom(_ pad: Int) -> Bool {
        withQueue { queue in queue.outs.with(pad) { out in out.drops || !out.fillSeenByProducer.full } }
    }

    /// Asks the scheduler to look at this queue again: its processor's state
    /// changed between invocations (it no longer `holdsBuffersToSend`).
    public func reconsider() {
        withQueue { queue in queue.dirty.mark(queue.slot) }
    }

    /// The processor is done with the buffer (the seed's `doneBuffer`): its
    /// hold is released and the buffer goes back to its creator when it was the last.
    public func doneBuffer(_ buffer: Buffer) {
        withQueue { finishedWith(buffer, queue: $0) }
        buffer.dropHold(fate: abandoning ? .abandoned : .consumed)
    }

    /// Drops a buffer the processor holds, outside `process` (a frame it
    /// kept and whose deadline passed): counted as a drop for `reason` on
    /// this queue, with no nak (the sender is not known here).
    public func dropBuffer(_ buffer: Buffer, reason: DropReason) {
        withQueue { $0.dropHeld(buffer, reason: reason, from: -1) }
    }

    /// Counts `count` drops for `reason` of work that had no buffer yet (a
    /// frame job that could not be launched before its deadline).
    public func countDrop(_ reason: DropReason, count: Int = 1) {
        withQueue { $0.counters.dropped(reason).add(count) }
    }

    /// A new buffer of `size` bytes from the creator the queue's buffer
    /// management names (own, upstream or, for `pad`, downstream), or nil
    /// when none is available now or the queue creates no buffers.
    public func acquireBuffer(size: Int, pad: Int = 0) -> Buffer? {
        withQueue { queue in
            // Optional chaining on the `let` borrows the creator: no reference counting.
            if queue.acquireCreators.count == 1 { return queue.soleCreator?.createBuffer(payloadSize: size, pad: pad) }
            guard queue.acquireCreators.indices.contains(pad) else { return nil }
            return queue.acquireCreators[pad].createBuffer(payloadSize: size, pad: pad)
        }
    }

    // MARK: The queue itself (the seed's Queue::peek, remove, busy)

    /// The buffer the queue would hand the processor next, left queued (nil
    /// when none waits). The processor does not hold it: it may read its
    /// fields, not keep it.
    public func peek() -> Buffer? { withQueue { $0.peek()?.buffer } }

    /// Takes the next waiting buffer out of the queue, as if it were the
    /// next one processed (nil when none waits): the processor now holds it
    /// and gives it up as any other (`sendTo`, `doneBuffer`), which also
    /// acks its sender on an `ack` queue. A processor that takes several
    /// buffers at once (a batch, a mixer lining up inputs) uses it.
    public func remove() -> Buffer? {
        withQueue { queue in
            while let entry = queue.pop() {
                if let buffer = queue.taken(entry) { return buffer }   // nil: a shared buffer no copy could be made of, dropped
            }
            return nil
        }
    }

    /// Whether the processor has said it is busy.
    public var isBusy: Bool { withQueue { $0.busy } }

    /// The processor cannot take another buffer now (it waits for a device,
    /// or for work it started): the scheduler hands it none, and runs the
    /// rest of the thread's queues, until `notBusy()`. Buffers arriving
    /// meanwhile wait in the queue under its policies. A busy source is not
    /// asked to produce.
    public func busy() { setBusy(true) }

    /// The processor can take buffers again.
    public func notBusy() { setBusy(false) }

    private func setBusy(_ busy: Bool) {
        withQueue { queue in
            guard queue.busy != busy else { return }
            queue.busy = busy
            queue.dirty.mark(queue.slot)
        }
    }

    // MARK: For processors that finish buffers asynchronously (a process link)

    /// Whether every upstream connection has ended and the queue is empty.
    /// The end is read first: it is one local load on most calls, and once
    /// it is seen, every push before it is visible to the depth.
    @_spi(Runtime) public var upstreamEnded: Bool {
        withQueue { $0.pendingUpstream.load(ordering: .acquiring) == 0 && $0.depth == 0 }
    }

    /// Acks the sender of a held buffer now, on an `ack` queue (once), while
    /// the processor keeps holding it.
    func acknowledge(_ buffer: Buffer) {
        withQueue { finishedWith(buffer, queue: $0) }
    }

    /// Drops a held buffer that `sender` sent (see `RunningQueue.dropHeld`).
    func dropHeld(_ buffer: Buffer, reason: DropReason, sender: Int32, count: Bool = true, nak: Bool = true) {
        withQueue { $0.dropHeld(buffer, reason: reason, from: sender, count: count, nak: nak) }
    }

    /// Stops the graph with an error: sources end, inputs close, and
    /// `GraphEngine.failure` says `message` (the first failure wins).
    @_spi(Runtime) public func failGraph(_ message: String) {
        withQueue { $0.engine.fail(message) }
    }

    /// On an `ack` queue, the first release of a popped buffer acks its sender.
    @inline(__always)
    private func finishedWith(_ buffer: Buffer, queue: RunningQueue) {
        guard queue.sync == .ack else { return }
        guard let i = queue.holding.firstIndex(where: { $0.buffer == buffer }) else { return }
        let from = queue.holding.remove(at: i).from
        if from >= 0 && !abandoning {
            queue.counters.acks.bump()
            if Tracing.on(QG_TP_FEEDBACK_ACK) { qg_tp_feedback_ack(queue.traceGraph, UInt32(queue.index), UInt32(from), buffer.sequence) }
            buffer.addHold()
            queue.engine.postFeedback(.ack, buffer: buffer, to: Int(from))
        }
    }
}
