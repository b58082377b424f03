/// A problem found in a `QueueGraphConfig` before any graph runs, naming the
/// queue and the field at fault.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem it is.
    public enum Code: String, Sendable {
        case duplicateName
        case emptyName
        case invalidSize
        case invalidByteBound
        case invalidOutPads
        case invalidRED
        case unknownQueue
        case unknownPad
        case duplicateConnection
        case unconnectedPad
        case missingCreator
        case unusedCreator
        case unsatisfiedBuffers
        case cycleWithoutExit
        case deadlockingCycle
        case sourceWithoutBuffers
        case invalidServers
        case invalidLoadBalancer
        case notCompound
        /// A `child` queue's child part is fed from outside, makes buffers, or has too many exits.
        case childBoundary
        /// A link carries buffers its downstream cannot take, or a processor
        /// cannot say what it sends (a media file that does not open).
        case formatRefused
    }

    public var code: Code
    /// The queue at fault.
    public var queue: String
    /// The `QueueConfig` field (or `connections`) at fault.
    public var field: String
    /// What was found and what was expected.
    public var message: String
    /// The upstream queue of the link at fault (`queue` is its downstream), if a link is.
    public var from: String?

    public init(_ code: Code, queue: String, field: String, _ message: String, from: String? = nil) {
        self.code = code
        self.queue = queue
        self.field = field
        self.message = message
        self.from = from
    }

    public var description: String { "queue '\(queue)', \(field): \(message)" }
}

/// Every problem found in a config; thrown by `QueueGraphConfig.validate()`.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    public var errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// A graph that validated but cannot start or be driven as asked.
public enum QueueGraphError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An operation named a queue the graph does not have.
    case unknownQueue(String)
    /// External input goes only into queues without upstream connections.
    case notAnInputQueue(String)
    /// The operation does not fit the graph's state (e.g. start after stop).
    case invalidState(String)
    /// A processor refused its thread's start (`ThreadLifecycle.threadDidStart`
    /// threw: no GL context, a shader that does not compile); the graph did not start.
    case threadStartFailed(queue: String, reason: String)

    public var description: String {
        switch self {
        case .unknownQueue(let q): "no queue named '\(q)'"
        case .notAnInputQueue(let q): "queue '\(q)' has upstream connections; external input goes only into queues without"
        case .invalidState(let s): s
        case .threadStartFailed(let q, let reason): "queue '\(q)' could not start: \(reason)"
        }
    }
}
