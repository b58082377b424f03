import DequeModule

/// The buffers a link to a part running elsewhere (a child process's,
/// `ChildLink`, or a remote host's) has sent and still holds, by window
/// token, and what the far side's messages about them do here: an ack acks
/// the sender now; a release releases the buffer with the far side's
/// verdict (so acks, naks and the pool ledger work across the boundary); a
/// send gives it to the exits it names, from the link's pads.
///
/// Threading: the link's scheduler thread, except `returned` (any thread).
@_spi(Runtime) public final class LinkFlights {
    struct Flight {
        var buffer: Buffer
        var sender: Int32
        /// The far side's result comes back in staging memory, not in the buffer's own.
        var staged: Bool
    }

    public let capacity: Int
    private var flights: [Flight?]
    private var freeTokens: [UInt32]
    private var pendingSends = Deque<(buffer: Buffer, pad: Int)>()
    private unowned(unsafe) var context: ProcessContext! = nil
    /// The exits (out pads) a message may name, as bits.
    private var padMask: UInt64 = 0
    private let lines = AtomicLines(count: 1)
    /// Buffers the far side sent back to queues here.
    public var returned: Int { lines.counter(0).value }

    public init(capacity: Int) {
        self.capacity = capacity
        flights = Array(repeating: nil, count: capacity)
        freeTokens = (0..<UInt32(capacity)).reversed()
    }

    deinit { lines.deallocate() }

    /// The link's queue context, given once by the engine before the graph starts.
    public func attach(_ context: ProcessContext) {
        self.context = context
        padMask = context.outPadCount >= 64 ? ~0 : (1 << UInt64(context.outPadCount)) - 1
    }

    /// A free token is left and no sent-back buffer waits for room.
    public var hasRoom: Bool { !freeTokens.isEmpty && pendingSends.isEmpty }
    /// While the far side runs, the link's queue may run: there is room and
    /// its stream goes on. Once its upstream has ended (and it is empty) it
    /// waits for the far side to finish: run then, it would end and lose what is out.
    public var mayRun: Bool { hasRoom && !context.upstreamEnded }
    /// No sent-back buffer waits for room.
    public var sendsFlushed: Bool { pendingSends.isEmpty }
    /// Nothing is out: every token is free.
    public var idle: Bool { freeTokens.count == capacity }

    /// Takes a token for `buffer` (nil when the window is full).
    public func depart(_ buffer: Buffer, sender: Int32, staged: Bool) -> UInt32? {
        guard let token = freeTokens.popLast() else { return nil }
        flights[Int(token)] = Flight(buffer: buffer, sender: sender, staged: staged)
        return token
    }

    /// Gives back a token taken by `depart` for a buffer that did not go.
    public func undo(_ token: UInt32) {
        flights[Int(token)] = nil
        freeTokens.append(token)
    }

    /// Acts on a message from the far side; `staged(token)` is where a
    /// staged buffer's result is. Messages naming no flight are ignored.
    public func handle(_ message: LinkMessage, staged: (Int) -> UnsafeRawPointer) {
        let token = Int(message.token)
        guard token < capacity, let flight = flights[token] else { return }
        switch LinkMessage.Kind(rawValue: message.kind) {
        case .ack:
            context.acknowledge(flight.buffer)
        case .release:
            undo(UInt32(token))
            switch BufferFate(rawValue: Int(message.fate)) {
            case .consumed:
                context.doneBuffer(flight.buffer)
            case .dropped:
                let reason = DropReason(rawValue: Int(message.reason)) ?? .failed
                context.dropHeld(flight.buffer, reason: reason, sender: flight.sender, count: false, nak: message.nak != 0)
            case .abandoned, nil:
                context.dropHeld(flight.buffer, reason: .lost, sender: flight.sender)
            }
        case .send:
            undo(UInt32(token))
            sendBack(flight, message, from: flight.staged ? staged(token) : nil)
        case .buffer, nil:
            return
        }
    }

    /// Gives a buffer the far side sent back to the exits it named.
    private func sendBack(_ flight: Flight, _ message: LinkMessage, from staged: UnsafeRawPointer?) {
        var buffer = flight.buffer
        if let staged {
            let size = Int(message.size)
            if buffer.holderCount > 1 || size > buffer.payload.capacity {
                // Others hold the original (read-only): the result goes in a copy.
                guard let copy = buffer.creator.createBuffer(payloadSize: size, pad: -1) else {
                    context.dropHeld(buffer, reason: .noBuffer, sender: flight.sender)
                    return
                }
                context.acknowledge(buffer)
                buffer.dropHold(fate: .consumed)
                buffer = copy
            }
            if size > 0 { buffer.payload.baseAddress!.copyMemory(from: staged, byteCount: size) }
        }
        message.apply(to: buffer)
        lines.counter(0).bump()
        var pads = message.pads & padMask
        guard pads != 0 else {
            context.dropHeld(buffer, reason: .failed, sender: flight.sender, nak: false)
            return
        }
        for _ in 1..<pads.nonzeroBitCount { context.share(buffer) }
        while pads != 0 {
            let pad = pads.trailingZeroBitCount
            pads &= pads - 1
            if !pendingSends.isEmpty || context.sendTo(pad, buffer) == .full { pendingSends.append((buffer, pad)) }
        }
    }

    /// Retries waiting sends, then acts on the far side's messages in `ring`
    /// while no send waits for room; true when anything happened.
    public func take(from ring: SharedRing, staged: (Int) -> UnsafeRawPointer) -> Bool {
        var did = flushSends()
        while sendsFlushed, let message = ring.pop() {
            handle(message, staged: staged)
            did = true
        }
        return did
    }

    /// Retries sends that found their queue full; true when one went.
    public func flushSends() -> Bool {
        var sent = false
        while let (buffer, pad) = pendingSends.first {
            if context.sendTo(pad, buffer) == .full { break }
            pendingSends.removeFirst()
            sent = true
        }
        return sent
    }

    /// Drops every buffer out as `lost` (the far side died holding them); returns how many.
    public func loseAll() -> Int {
        var lost = 0
        for token in flights.indices {
            guard let flight = flights[token] else { continue }
            undo(UInt32(token))
            context.dropHeld(flight.buffer, reason: .lost, sender: flight.sender)
            lost += 1
        }
        return lost
    }

    /// Drops a buffer that arrived when it could not go (no far side) as `lost`.
    public func lose(_ buffer: Buffer) {
        context.dropHeld(buffer, reason: .lost, sender: context.sender)
    }

    /// At the link's end of stream: an abandoning stop lets go of what is out
    /// (released as abandoned, no ack), a draining one drops it as `lost`.
    public func finish(context: ProcessContext) {
        for token in flights.indices {
            guard let flight = flights[token] else { continue }
            undo(UInt32(token))
            if context.abandoning {
                context.doneBuffer(flight.buffer)
            } else {
                context.dropHeld(flight.buffer, reason: .lost, sender: flight.sender, nak: false)
            }
        }
        while let (buffer, _) = pendingSends.popFirst() { buffer.dropHold(fate: context.abandoning ? .abandoned : .dropped) }
    }
}
