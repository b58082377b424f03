/// Makes buffers for a queue and takes them back (the seed's `BufferCreator`).
///
/// Threading: `createBuffer` is called on the thread of the processor that
/// asks for a buffer; `destroyBuffer` on whichever thread drops the last hold.
/// Implementations must be safe to call from several threads at once.
///
/// Ownership rule: a creator makes its buffers with `Buffer.allocate` and
/// owns them: it calls `deallocate()` on each once, when it is torn down,
/// and never while a buffer it handed out has not come back through
/// `destroyBuffer`. `Buffer` values are handles that keep nothing alive.
public protocol BufferCreator: AnyObject, Sendable {
    /// A name for statistics and errors.
    var name: String { get }
    /// Hands out a buffer with one hold and at least `payloadSize` bytes, or
    /// nil when none is available now. `pad` says where the buffer will go
    /// (-1 for unknown).
    func createBuffer(payloadSize: Int, pad: Int) -> Buffer?
    /// Takes a buffer back once nobody holds it; `fate` says how it ended.
    func destroyBuffer(_ buffer: Buffer, fate: BufferFate)
    /// Counters for the ledger.
    func statistics() -> PoolStatistics
    /// Registers an event to notify when a buffer becomes available after
    /// `createBuffer` returned nil. Called before the graph starts.
    func addAvailabilityObserver(_ event: WakeEvent)
    /// The creator's id in traces, given once before the graph starts: count
    /// each acquire and return with `Tracing.countPoolFlow` under it (the
    /// `pool_flow` event). The default does not count.
    func traceAs(_ id: PoolTraceID)
}

extension BufferCreator {
    public func addAvailabilityObserver(_ event: WakeEvent) {}
    public func traceAs(_ id: PoolTraceID) {}
}

/// Counters of a `BufferCreator`, read as a snapshot.
///
/// The ledger balances when `acquired == consumed + dropped + abandoned + inUse`.
public struct PoolStatistics: Sendable, Equatable {
    public var name: String
    /// Buffers the pool can hand out at once.
    public var capacity: Int
    /// Buffers handed out since creation.
    public var acquired: Int
    /// Buffers that came back after a processor was done with them.
    public var consumed: Int
    /// Buffers that came back after being dropped.
    public var dropped: Int
    /// Buffers that came back at an abandoning stop.
    public var abandoned: Int
    /// Requests that found the pool empty.
    public var exhausted: Int
    /// Buffers out now.
    public var inUse: Int
    /// Most buffers out at once.
    public var peakInUse: Int
    /// Payload bytes allocated.
    public var bytesAllocated: Int
    /// Payload bytes of the buffers out now.
    public var bytesInUse: Int

    public init(
        name: String, capacity: Int, acquired: Int = 0, consumed: Int = 0, dropped: Int = 0,
        abandoned: Int = 0, exhausted: Int = 0, inUse: Int = 0, peakInUse: Int = 0, bytesAllocated: Int = 0, bytesInUse: Int = 0
    ) {
        self.name = name
        self.capacity = capacity
        self.acquired = acquired
        self.consumed = consumed
        self.dropped = dropped
        self.abandoned = abandoned
        self.exhausted = exhausted
        self.inUse = inUse
        self.peakInUse = peakInUse
        self.bytesAllocated = bytesAllocated
        self.bytesInUse = bytesInUse
    }

    /// True when every buffer handed out is either out now or came back with a fate.
    public var isBalanced: Bool { acquired == consumed + dropped + abandoned + inUse }
}
