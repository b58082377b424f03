/// A buffer waiting in a queue, as a custom discipline keeps it: the buffer
/// and what the queue needs to hand it on (its sender, its arrival time).
///
/// Threading: a value; kept and handed back under its queue's lock.
public struct WaitingBuffer: Sendable {
    let entry: Entry
    /// The buffer (a handle: read its fields, do not release it).
    public var buffer: Buffer { entry.buffer }
}

/// An application's queue discipline: keeps a queue's waiting buffers and
/// says which one leaves next (the seed's `QueueDiscipline` handler, in
/// `QueueHandlers`). Register one with `ProcessorRegistry.register(discipline:)`
/// and name it in graph files as `discipline: NAME`; each running queue gets
/// its own handler from `CustomDiscipline.make`.
///
/// Threading: every call is made under the queue's lock, by its producers
/// (`insert`) and its consumer (the rest): keep them short, and never block
/// or call back into the graph.
public protocol QueueDisciplineHandler: AnyObject {
    /// How many buffers it keeps.
    var count: Int { get }
    /// A buffer arrived (and the queue's management let it in).
    func insert(_ waiting: WaitingBuffer)
    /// The buffer `removeNext` would give, left in place.
    func next() -> WaitingBuffer?
    /// Takes out the buffer that leaves next.
    func removeNext() -> WaitingBuffer?
    /// Takes out the buffer wanted least, which a full `headdrop` queue (or
    /// a management policy) drops to make room.
    func removeLeastWanted() -> WaitingBuffer?
    /// Takes out every buffer (an abandoning stop).
    func removeAll() -> [WaitingBuffer]
}

/// A named custom handler and how to make one for each running queue: a
/// `CustomDiscipline` or a `CustomManagement`.
///
/// Threading: a value; any thread.
public struct NamedQueueHandler<Handler>: Sendable, Hashable {
    public let name: String
    public let make: @Sendable () -> Handler

    public init(name: String, make: @escaping @Sendable () -> Handler) { (self.name, self.make) = (name, make) }

    public static func == (a: Self, b: Self) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// A named custom discipline (`discipline: NAME` in graph files).
public typealias CustomDiscipline = NamedQueueHandler<any QueueDisciplineHandler>
/// A named custom management policy (`management: NAME` in graph files).
public typealias CustomManagement = NamedQueueHandler<any QueueManagementHandler>

/// What a custom management policy does with an arriving buffer.
///
/// Threading: a value; any thread.
public enum ManagementDecision: Sendable {
    /// Queue it (a queue at its size or byte bound refuses it instead: `refuse`).
    case accept
    /// Drop it (counted under `DropReason.policy`).
    case dropArrival
    /// Queue it, dropping the buffer the discipline wants least to make room
    /// (counted under `DropReason.policy`); on an empty queue, just queue it.
    case dropLeastWanted
    /// Not now: the producer keeps it and waits for room (back-pressure, as
    /// a full `default` queue).
    case refuse
}

/// An application's management policy: decides for each arriving buffer
/// whether the queue takes it (the seed's `QueueManager`, "responsible for
/// enqueue", in `QueueHandlers`). Register one with
/// `ProcessorRegistry.register(management:)` and name it in graph files as
/// `management: NAME`; each running queue gets its own handler.
///
/// Threading: called under the queue's lock by its producers: keep it
/// short, and never block or call back into the graph.
public protocol QueueManagementHandler: AnyObject {
    /// A buffer arrives at a queue holding `depth` buffers (`bytes` payload
    /// bytes) of its `size`.
    func admit(_ buffer: Buffer, depth: Int, bytes: Int, size: Int) -> ManagementDecision
}
