/// The work a queue does on each buffer it receives (the seed's
/// `BufferProcessor`): a decoder, a mixer, a sink.
///
/// Threading: every method is called on the scheduler thread that owns the
/// processor's queue, one call at a time; a processor needs no locks for its
/// own state. `context` is valid only during the call.
///
/// Holding rule: when `process` is called the processor holds the buffer. It
/// must give the hold up exactly once — by sending it on
/// (`context.sendTo`), by `context.doneBuffer`, or by returning `.failed` or `.late` —
/// now or in a later call.
public protocol BufferProcessor: AnyObject {
    /// Processes one buffer taken from the queue.
    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult
    /// A queue with `ack` sync that this processor sent `buffer` to is done
    /// with it. Does nothing by default.
    func recvAck(_ buffer: Buffer, context: ProcessContext)
    /// A queue with `nak` sync that this processor sent `buffer` to dropped it
    /// or failed it. Does nothing by default.
    func recvNak(_ buffer: Buffer, reason: DropReason, context: ProcessContext)
    /// Every upstream has ended and the queue is empty: send or release any
    /// buffer still held. After an abandoning stop, sends are refused and
    /// buffers are released as abandoned.
    func endOfStream(context: ProcessContext)
}

extension BufferProcessor {
    public func recvAck(_ buffer: Buffer, context: ProcessContext) {}
    public func recvNak(_ buffer: Buffer, reason: DropReason, context: ProcessContext) {}
    public func endOfStream(context: ProcessContext) {}
}

/// A processor that makes buffers instead of receiving them (a capture
/// device, a test pattern). Its queue has no upstream; the scheduler calls
/// `produce` whenever the queue may run.
///
/// Threading: as `BufferProcessor`.
public protocol BufferSource: BufferProcessor {
    /// Makes and sends at most a few buffers.
    func produce(context: ProcessContext) -> ProduceResult
}

extension BufferSource {
    /// Sources receive nothing: a buffer sent to one is released.
    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        context.doneBuffer(buffer)
        return .ok
    }
}

/// The outcome of `BufferProcessor.process`.
public enum ProcessResult: Sendable, Equatable {
    /// The processor took care of the buffer's hold.
    case ok
    /// The processor could not process the buffer and did not keep it: the
    /// runtime drops it (reason `.failed`) and naks the sender on a `nak` queue.
    case failed
    /// The buffer's deadline has passed and the processor did not process
    /// it (never deliver a frame late): the runtime drops it (reason
    /// `.late`) and naks the sender on a `nak` queue.
    case late

    /// Why the runtime drops the buffer of this result; nil for `.ok`.
    public var dropReason: DropReason? {
        switch self {
        case .ok: nil
        case .failed: .failed
        case .late: .late
        }
    }
}

/// The outcome of `BufferSource.produce`.
public enum ProduceResult: Sendable, Equatable {
    /// Produced (or tried to and should be called again soon).
    case produced
    /// No buffer could be had from the creator; call again when one comes back.
    case waitingForBuffer
    /// Not time yet; call again after the given monotonic time in nanoseconds.
    case waitingUntil(UInt64)
    /// The source has ended; end-of-stream flows downstream.
    case endOfStream
}

/// The outcome of offering a buffer to a queue.
public enum PushResult: Sendable, Equatable {
    /// The queue took the buffer and its hold.
    case accepted
    /// The queue dropped the buffer (counted; its hold was released, the sender naked on a `nak` queue).
    case dropped(DropReason)
    /// A `default` queue is full: the buffer and its hold stay with the caller.
    case full
    /// The queue has ended or the graph has stopped: the buffer was released.
    case closed
}

/// A processor that spreads each buffer's work over `servers` threads (a
/// compound queue): a queue whose config declares more than one server
/// needs one, with the same number of servers.
///
/// Threading: as `BufferProcessor`; the processor owns its server threads.
public protocol CompoundProcessor: BufferProcessor {
    /// How many threads share each buffer's work, the calling thread included.
    var servers: Int { get }
}

/// A processor whose thread must be wakeable from another process: its
/// scheduler group sleeps on `sharedWakeEvent` (placed in shared memory)
/// instead of a private event. Asked once, when the graph is built.
@_spi(Runtime) public protocol SharedWakeEventProvider: BufferProcessor {
    var sharedWakeEvent: WakeEvent { get }
}

/// A processor that cannot take a buffer every time its queue has one (a
/// process link whose window to the child is full): the scheduler runs its
/// queue only while `acceptsBuffers`, and the processor wakes its thread
/// when that changes.
@_spi(Runtime) public protocol GatedProcessor: BufferProcessor {
    var acceptsBuffers: Bool { get }
}

/// A processor that acts outside its calls (a process link serving its
/// channel): the engine gives it its queue's context once, before the graph
/// starts. The context keeps its threading rule: the queue's thread only.
@_spi(Runtime) public protocol ContextAttaching: BufferProcessor {
    func attach(_ context: ProcessContext)
}

/// A processor whose parameters can change while it runs
/// (`QueueGraph.setParameter`): the new value is checked against its
/// queue's `liveParameters`, then given here between two buffers, so the
/// next buffer it processes sees it.
///
/// Threading: called on the processor's scheduler thread, between invocations.
public protocol LiveParameters: BufferProcessor {
    /// Takes `value` (of the declared kind, in range) for the parameter `name`.
    func setParameter(_ name: String, to value: ParameterValue)
}
