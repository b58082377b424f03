/// A source that sends `count` buffers of `size` bytes, numbered 0…count-1
/// in `sequence` (and in the first 8 payload bytes when there is room),
/// with priority `priority(i)`, then ends.
///
/// Threading: as `BufferProcessor` (its queue's scheduler thread).
public final class CountingSource: BufferSource {
    public let count: Int
    public let size: Int
    private let priority: @Sendable (Int) -> Int
    public private(set) var sent = 0

    public init(count: Int, size: Int = 8, priority: @escaping @Sendable (Int) -> Int = { _ in 0 }) {
        self.count = count
        self.size = size
        self.priority = priority
    }

    public func produce(context: ProcessContext) -> ProduceResult {
        guard sent < count else { return .endOfStream }
        guard let buffer = context.acquireBuffer(size: size) else { return .waitingForBuffer }
        buffer.sequence = UInt64(sent)
        buffer.priority = priority(sent)
        if buffer.size >= 8 { buffer.bytes.storeBytes(of: UInt64(sent), as: UInt64.self) }
        if context.sendTo(0, buffer) == .full {
            context.doneBuffer(buffer)   // not expected: the scheduler does not run us into a full queue
            return .produced
        }
        sent += 1
        return sent == count ? .endOfStream : .produced
    }
}

/// Sends every buffer on, unchanged, through pad 0.
///
/// Threading: as `BufferProcessor`.
public final class Forwarder: BufferProcessor {
    public init() {}

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        passOn(buffer, context: context)
        return .ok
    }
}

/// Sends every buffer to all of its pads (the same buffer, shared read-only).
///
/// Threading: as `BufferProcessor`.
public final class Tee: BufferProcessor {
    public init() {}

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        for pad in 0..<context.outPadCount {
            if pad < context.outPadCount - 1 { context.share(buffer) }
            if context.sendTo(pad, buffer) == .full { context.doneBuffer(buffer) }
        }
        return .ok
    }
}

/// A sink that counts buffers and bytes and releases each one.
///
/// Threading: as `BufferProcessor`; read the counts after the graph stopped.
public final class CountingSink: BufferProcessor, @unchecked Sendable {
    // One thread writes them (the queue's), so no dynamic exclusivity check per buffer.
    @exclusivity(unchecked) public private(set) var buffers = 0
    @exclusivity(unchecked) public private(set) var bytes = 0

    public init() {}

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        buffers += 1
        bytes += buffer.size
        context.doneBuffer(buffer)
        return .ok
    }
}

extension Forwarder: FormatAware {
    public func negotiate(arriving: [LinkFormat]) -> [LinkFormat] { passThrough(arriving) }
}
extension Tee: FormatAware {
    public func negotiate(arriving: [LinkFormat]) -> [LinkFormat] { passThrough(arriving) }
}
