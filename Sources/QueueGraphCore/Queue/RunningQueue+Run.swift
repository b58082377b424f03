/// One invocation, as the walk of a buffer reads:
///
///     GroupScheduler.runOnce ─▶ RunningQueue.run ─▶ BufferProcessor.process
///         ─▶ ProcessContext.sendTo ─▶ RunningQueue.push (the next queue)
///
/// Threading: the queue's scheduler thread.
extension RunningQueue {
    /// Runs the processor once: a source produces; any other queue pops one
    /// buffer and processes it, or ends once it is empty and its upstream ended.
    func run() -> StepReport.Action {
        if isSource {
            if draining.load(ordering: .relaxed) {
                finish()
                return .endOfStream
            }
            sourceWaitUntil = 0
            // Optional chaining on the `let` borrows the source: no reference counting.
            let result = source?.produce(context: context)
            switch result {
            case .produced, nil: break
            case .waitingForBuffer: sourceBlockedOnBuffer = true
            case .waitingUntil(let time): sourceWaitUntil = max(time, 1)
            case .endOfStream: finish()
            }
            return .produced
        }
        guard let entry = pop() else {
            finish()
            return .endOfStream
        }
        guard let buffer = taken(entry) else { return .processed }
        process(buffer, from: entry.from)
        return .processed
    }

    /// A popped entry's buffer, as the processor may hold it: on a `reuse`
    /// queue a shared buffer is replaced by a private copy (nil, dropped as
    /// `noBuffer`, when no copy can be made). An `ack` queue notes its sender.
    @inline(__always)
    func taken(_ entry: Entry) -> Buffer? {
        var buffer = entry.buffer
        if buffers == .reuse && buffer.holderCount > 1 {
            guard let copy = exclusiveCopy(of: buffer) else {
                counters.dropped(.noBuffer).add()
                release(buffer, droppedFor: .noBuffer, from: entry.from)
                return nil
            }
            buffer.dropHold(fate: .consumed)
            buffer = copy
        }
        if sync == .ack { holding.append((buffer, entry.from)) }
        return buffer
    }

    @inline(__always)
    private func process(_ buffer: Buffer, from: Int32) {
        context.sender = from
        let result = processor.process(buffer, context: context)
        if let reason = result.dropReason { dropHeld(buffer, reason: reason, from: from) }
    }

    /// A private copy of a shared buffer for a `reuse` queue, from the same creator.
    private func exclusiveCopy(of buffer: Buffer) -> Buffer? {
        guard let copy = buffer.creator.createBuffer(payloadSize: buffer.size, pad: -1) else { return nil }
        copy.bytes.copyMemory(from: UnsafeRawBufferPointer(buffer.bytes))
        copy.priority = buffer.priority
        copy.sequence = buffer.sequence
        copy.timestamp = buffer.timestamp
        return copy
    }

    /// Ends the queue: its processor flushes, then each downstream connection closes.
    func finish() {
        guard !finished else { return }
        processor.endOfStream(context: context)
        finished = true
        for pad in outs.indices {
            outs.with(pad) { out in
                out.pendingUpstream.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                if out.group == group { out.dirty.mark(out.slot) }
                out.consumerEvent.notify()
            }
        }
        engine.queueEnded(self)
    }
}
