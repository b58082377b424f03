/// What a queue does with a buffer that arrives when it is full (the seed's
/// `QueueManagementType`, plus `headdrop`).
public enum QueueManagement: Sendable, Equatable {
    /// Never drop: a full queue back-pressures its producer.
    case `default`
    /// Drop the arriving buffer when full.
    case taildrop
    /// Drop the oldest buffer to make room for the arriving one (live video).
    case headdrop
    /// Random early drop (Floyd & Jacobson 1993) with the given parameters.
    case red(RED)
    /// An application's policy (`QueueManagementHandler`), by name.
    case custom(CustomManagement)

    /// The policy's name as written in graph files, docs and traces.
    public var name: String {
        switch self {
        case .default: "default"
        case .taildrop: "taildrop"
        case .headdrop: "headdrop"
        case .red: "red"
        case .custom(let custom): custom.name
        }
    }

    /// The built-in policies' names, as graph files write them.
    public static let builtInNames = ["default", "taildrop", "headdrop", "red"]

    /// Whether the queue can ever refuse or discard a buffer.
    public var drops: Bool { self != .default }
}

/// Parameters of random early drop.
///
/// On every arrival the average fill `avg` moves toward the current depth:
/// `avg += weight * (depth - avg)`. Below `minThreshold` nothing is dropped;
/// at or above `maxThreshold` (and always at capacity) the arrival is dropped;
/// in between it is dropped with probability `pb / (1 - count * pb)`, where
/// `pb = maxProbability * (avg - minThreshold) / (maxThreshold - minThreshold)`
/// and `count` is the number of arrivals since the last drop.
public struct RED: Sendable, Equatable {
    /// Average depth (in buffers) below which nothing is dropped.
    public var minThreshold: Double
    /// Average depth at or above which every arrival is dropped.
    public var maxThreshold: Double
    /// Drop probability as the average reaches `maxThreshold`, in (0, 1].
    public var maxProbability: Double
    /// EWMA weight of the current depth, in (0, 1].
    public var weight: Double
    /// Seed of the queue's random source; the same seed gives the same drops.
    public var seed: UInt64

    public init(minThreshold: Double, maxThreshold: Double, maxProbability: Double = 0.1,
                weight: Double = 0.02, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        self.minThreshold = minThreshold
        self.maxThreshold = maxThreshold
        self.maxProbability = maxProbability
        self.weight = weight
        self.seed = seed
    }

    /// Thresholds at a quarter and three quarters of `size`.
    public static func forSize(_ size: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> RED {
        RED(minThreshold: Double(size) / 4, maxThreshold: Double(size) * 3 / 4, seed: seed)
    }
}

/// The order in which a queue gives out its buffers (the seed's
/// `QueueDisciplineType`), or an application's own (`custom`).
///
/// Threading: a value; any thread.
public enum QueueDiscipline: Sendable, Hashable {
    /// Oldest first.
    case fifo
    /// Newest first.
    case lifo
    /// Highest `Buffer.priority` first; equal priorities in arrival order.
    case prio
    /// An application's discipline (`QueueDisciplineHandler`), by name.
    case custom(CustomDiscipline)

    /// The built-in disciplines.
    public static let builtIns: [QueueDiscipline] = [.fifo, .lifo, .prio]

    /// The discipline's name as written in graph files, docs and traces.
    public var name: String {
        switch self {
        case .fifo: "fifo"
        case .lifo: "lifo"
        case .prio: "prio"
        case .custom(let custom): custom.name
        }
    }
}

/// Whether the sender hears back about buffers (the seed's `BufferSyncType`).
public enum BufferSync: String, Sendable, CaseIterable {
    /// No feedback.
    case none
    /// The sender's `recvAck` runs once per buffer after the receiving processor is done with it.
    case ack
    /// The sender's `recvNak` runs once per buffer dropped here or failed by the receiving processor.
    case nak
}

/// Where a queue's processor runs (the seed's `QueueThreadingType`).
public enum QueueThreading: String, Sendable, CaseIterable {
    /// On the thread of its upstream queue.
    case none
    /// On a new thread with its own scheduler; buffers cross threads to reach it.
    case thread
    /// In a child process that runs this queue and the queues that follow it
    /// on its thread (see `ChildOptions`); buffers cross in shared memory.
    case child
    /// On another host (`QueueConfig.host`, one of `QueueGraphConfig.hosts`),
    /// whose worker runs this queue and the queues that follow it on its
    /// thread; buffers cross the network (QueueGraphRemote, over UCX).
    case remote
}

/// Where a queue's processor gets the buffers it sends (the seed's `BufferManagementType`).
public enum BufferManagement: String, Sendable, CaseIterable {
    /// Passes incoming buffers on unchanged.
    case forward
    /// Changes incoming buffers in place; the runtime gives it sole ownership (copying a shared buffer first).
    case reuse
    /// New buffers come from the nearest upstream queue that is a `provider`.
    case upstream
    /// New buffers come from the nearest downstream queue (through the pad) that is a `provider`.
    case downstream
    /// New buffers come from the queue's own `BufferCreator`.
    case provider

    /// Whether the queue's processor can acquire new buffers.
    public var creates: Bool { self == .upstream || self == .downstream || self == .provider }
}

/// Why a buffer was dropped.
public enum DropReason: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// A `taildrop` queue (or a full queue pushed with `.fail`) refused it.
    case taildrop
    /// A `headdrop` queue discarded it, the oldest, for a newer one.
    case headdrop
    /// Random early drop.
    case red
    /// The queue's byte bound would have been exceeded (taildrop of a bounded queue).
    case bytes
    /// The processor reported it could not process it.
    case failed
    /// A shared buffer had to be copied for a `reuse` queue and no buffer was available.
    case noBuffer
    /// It arrived after the queue had seen end-of-stream or the graph stopped.
    case closed
    /// Its deadline had passed: the processor dropped it rather than deliver
    /// it late (a render job that missed its frame time).
    case late
    /// The child process of a `child` queue ended (crashed or was killed)
    /// while it held the buffer, or the buffer arrived after the child had
    /// ended for good (`restart: never`).
    case lost
    /// Damaged input: a media source's decoder refused a packet or made a
    /// damaged frame (the processor keeps the decoder's message).
    case corrupt
    /// An application's management policy dropped it (`QueueManagementHandler`).
    case policy

    public var description: String {
        switch self {
        case .taildrop: "taildrop"
        case .headdrop: "headdrop"
        case .red: "red"
        case .bytes: "bytes"
        case .failed: "failed"
        case .noBuffer: "no-buffer"
        case .closed: "closed"
        case .late: "late"
        case .lost: "lost"
        case .corrupt: "corrupt"
        case .policy: "policy"
        }
    }

    /// Whether the queue dropped it on arrival; the others (`failed`,
    /// `noBuffer`, `late`) happen to a buffer already popped.
    public var isOnArrival: Bool { self != .failed && self != .noBuffer && self != .late && self != .lost && self != .corrupt }
}
