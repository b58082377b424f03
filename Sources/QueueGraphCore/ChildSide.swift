import CQueueGraph
#if canImport(Glibc)
import Glibc
#endif

/// The far end of a link, where a part runs (a child process, a remote
/// host's worker): buffers from the parent arrive on `down`, their payloads
/// in memory the channel maps; what becomes of them goes back by `send`.
///
/// Threading: `down` is popped by the part's ingress thread, which also
/// calls `send`, `ready` and `endOfStream`; `send` is also called by the
/// part's threads that let buffers go. `region` any thread.
@_spi(Runtime) public protocol PartChannel: AnyObject, Sendable {
    /// The window: at most this many buffers are here at once, by token.
    var capacity: Int { get }
    /// Buffers from the parent (`LinkMessage.Kind.buffer`), oldest first.
    var down: SharedRing { get }
    /// The memory of payload region `id`: its base and how many bytes may be read.
    func region(_ id: UInt32) -> (base: UnsafeMutableRawPointer, bytes: Int)?
    /// The parent's stream has ended (read before `down`: what came before it is then visible).
    var endOfStream: Bool { get }
    /// The event the ingress thread sleeps on; the channel wakes it when buffers arrive.
    var wake: WakeEvent { get }
    /// Tells the parent what became of a buffer (an ack, a release or a send).
    func send(_ message: LinkMessage)
    /// The part's graph runs: the parent may send.
    func ready()
    /// Sends what `send` batched (the ingress calls it before its thread sleeps, and as it ends).
    func flush()
}

extension PartChannel {
    public func flush() {}
}

/// The child's end of a `child` queue's channel: the control region and
/// every payload region the parent passed down, mapped, with the rings and
/// both wake events.
///
/// Threading: the rings as `SharedRing` says (the child's graph thread pops
/// `down` and pushes `up`); the rest any thread.
final class ChildChannel: PartChannel, @unchecked Sendable {
    let control: SharedMemory
    let regions: [UInt32: SharedMemory]
    let capacity: Int
    let generation: UInt32
    let parentEvent: WakeEvent
    let childEvent: WakeEvent
    let down: SharedRing
    let up: SharedRing

    init(_ spec: ChildChannelSpec) throws {
        control = try SharedMemory(mapping: spec.control, id: 0, reserve: 0)
        guard control.size >= ChannelLayout.down,
              ChannelLayout.field(.magic, in: control).load(ordering: .acquiring) == ChannelLayout.magic else {
            throw ProcessorError("fd \(spec.control) is not a process channel")
        }
        capacity = Int(ChannelLayout.field(.capacity, in: control).load(ordering: .acquiring))
        let layout = ChannelLayout(capacity: capacity)
        guard capacity > 0, control.size >= layout.totalBytes else { throw ProcessorError("the process channel is too small") }
        var regions: [UInt32: SharedMemory] = [:]
        for (id, fd, bytes) in [spec.staging] + spec.regions { regions[id] = try SharedMemory(mapping: fd, id: id, reserve: bytes) }
        self.regions = regions
        generation = ChannelLayout.field(.generation, in: control).load(ordering: .acquiring)
        parentEvent = WakeEvent(in: control, at: ChannelLayout.parentEvent, initialize: false)
        childEvent = WakeEvent(in: control, at: ChannelLayout.childEvent, initialize: false)
        down = SharedRing(at: control.base + ChannelLayout.down, capacity: capacity)
        up = SharedRing(at: control.base + layout.up, capacity: 2 * capacity)
    }

    /// Sends a message to the parent and wakes its thread if it sleeps.
    func send(_ message: LinkMessage) {
        let pushed = up.push(message)
        precondition(pushed, "the up ring overflowed: more than two messages per buffer in the window")
        parentEvent.notify()
    }

    func region(_ id: UInt32) -> (base: UnsafeMutableRawPointer, bytes: Int)? { regions[id].map { ($0.base, $0.reserved) } }

    var endOfStream: Bool { ChannelLayout.field(.endOfStream, in: control).load(ordering: .sequentiallyConsistent) != 0 }

    var wake: WakeEvent { childEvent }

    func ready() {
        ChannelLayout.field(.ready, in: control).store(generation, ordering: .sequentiallyConsistent)
        parentEvent.notify()
    }
}

/// The child's view of the parent's buffers (its ingress queue's creator):
/// one `Buffer` per window token, its payload pointed at the memory the
/// parent named. Letting one go tells the parent — released with its fate,
/// or sent on to the exits it was given to — so the parent's ledger decides.
/// It makes no buffers: a `reuse` queue that needs a copy drops (`noBuffer`).
///
/// Threading: the child's graph thread (and its main thread after the graph stopped).
@_spi(Runtime) public final class RemoteBuffers: BufferCreator, @unchecked Sendable {
    public let name: String
    private let channel: any PartChannel
    private var buffers: [Buffer] = []
    /// Per token: the nak reason, the exits it was given to.
    private var naks: [UInt8]
    private var exits: [UInt64]
    private let lines = AtomicLines(count: 5)
    private var received: Counter { lines.counter(0) }
    private var consumed: Counter { lines.counter(1) }
    private var dropped: Counter { lines.counter(2) }
    private var abandoned: Counter { lines.counter(3) }
    private var exhausted: Counter { lines.counter(4) }

    public init(name: String, channel: any PartChannel) {
        self.name = name
        self.channel = channel
        naks = Array(repeating: LinkMessage.noReason, count: channel.capacity)
        exits = Array(repeating: 0, count: channel.capacity)
        buffers = (0..<channel.capacity).map { .allocate(creator: self, payload: BufferPayload(kind: .sharedMemory, baseAddress: nil, capacity: 0), slot: $0) }
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        lines.deallocate()
    }

    /// The buffer a message from the parent names, with one hold; nil (and
    /// released at once as failed) when it names memory not mapped here.
    func receive(_ message: LinkMessage) -> Buffer? {
        let token = Int(message.token)
        guard token < buffers.count, let region = channel.region(message.region),
              message.offset <= UInt64(region.bytes), message.size <= UInt64(region.bytes) - message.offset else {
            var reply = LinkMessage(kind: .release, token: message.token)
            (reply.fate, reply.reason) = (UInt8(BufferFate.dropped.rawValue), UInt8(DropReason.failed.rawValue))
            channel.send(reply)
            return nil
        }
        let buffer = buffers[token]
        buffer.payload = BufferPayload(kind: .sharedMemory, baseAddress: region.base + Int(message.offset),
                                       capacity: Int(message.size), handle: UInt64(message.region))
        buffer.prepareForUse(size: Int(message.size), sequence: message.sequence)
        message.apply(to: buffer)
        (naks[token], exits[token]) = (LinkMessage.noReason, 0)
        received.bump()
        return buffer
    }

    /// The queue naked this buffer to the ingress for `reason`: the parent naks its sender.
    func noteNak(_ buffer: Buffer, reason: DropReason) { naks[buffer.slot] = UInt8(reason.rawValue) }

    /// The buffer leaves for the parent through exit `pad` once the child lets go of it.
    func markExit(_ buffer: Buffer, pad: Int) { exits[buffer.slot] |= 1 << UInt64(pad) }

    public func createBuffer(payloadSize: Int, pad: Int) -> Buffer? {
        exhausted.add()
        return nil
    }

    public func destroyBuffer(_ buffer: Buffer, fate: BufferFate) {
        let token = buffer.slot
        var message: LinkMessage
        if exits[token] != 0 {
            message = LinkMessage(kind: .send, token: UInt32(token))
            message.describe(buffer)
            message.pads = exits[token]
            consumed.bump()
        } else {
            message = LinkMessage(kind: .release, token: UInt32(token))
            message.fate = UInt8(fate.rawValue)
            switch fate {
            case .consumed: consumed.bump()
            case .dropped:
                dropped.bump()
                (message.reason, message.nak) = (naks[token], naks[token] == LinkMessage.noReason ? 0 : 1)
            case .abandoned: abandoned.bump()
            }
        }
        channel.send(message)
    }

    /// `capacity` is what is here now: the buffers held plus one when the
    /// parent has sent more. (A scheduler wakes a source blocked on its
    /// creator when `inUse < capacity`; the ingress must wake only then.)
    public func statistics() -> PoolStatistics {
        let (received, consumed, dropped, abandoned) = (received.value, consumed.value, dropped.value, abandoned.value)
        let inUse = received - consumed - dropped - abandoned
        return PoolStatistics(name: name, capacity: inUse + (channel.down.hasMessages ? 1 : 0), acquired: received, consumed: consumed,
                              dropped: dropped, abandoned: abandoned, exhausted: exhausted.value, inUse: inUse,
                              bytesAllocated: 0, bytesInUse: 0)
    }
}

/// The child's source: it moves the parent's buffers from the channel into
/// the `child` queue (whose policies then apply, here in the child), relays
/// the queue's acks and naks up, and ends when the parent's stream has.
/// Its thread sleeps on the channel's child event, which the parent wakes.
///
/// Threading: the child's graph thread.
@_spi(Runtime) public final class ChildIngress: BufferSource, ThreadLifecycle, SharedWakeEventProvider, ContextAttaching, @unchecked Sendable {
    private let channel: any PartChannel
    private let remote: RemoteBuffers
    private unowned(unsafe) var context: ProcessContext! = nil
    private var pending: Buffer?
    /// The parent's stream has ended here (`produce` returned `.endOfStream`).
    private var ended = false

    public init(channel: any PartChannel, remote: RemoteBuffers) {
        self.channel = channel
        self.remote = remote
    }

    public var sharedWakeEvent: WakeEvent { channel.wake }
    public func attach(_ context: ProcessContext) { self.context = context }

    public func threadDidStart(wake: WakeEvent) throws { channel.ready() }

    public func threadWillEnd() { channel.flush() }

    public func produce(context: ProcessContext) -> ProduceResult {
        let ending = channel.endOfStream   // read before the ring: what came before it is then visible
        if drain() { return .produced }
        if ending && pending == nil && !channel.down.hasMessages {
            ended = true
            return .endOfStream
        }
        return .waitingForBuffer
    }

    public func serviceThread() -> Bool { drain() }

    public var hasThreadWork: Bool { channel.down.hasMessages || (channel.endOfStream && pending == nil && !ended) }

    public func threadWillSleep() { channel.flush() }

    /// Moves buffers from the channel into the queue until it is empty or the queue is full.
    private func drain() -> Bool {
        var moved = false
        if let buffer = pending {
            guard context.sendTo(0, buffer) != .full else { return false }
            pending = nil
            moved = true
        }
        while let message = channel.down.pop() {
            guard let buffer = remote.receive(message) else { continue }
            moved = true
            if context.sendTo(0, buffer) == .full {
                pending = buffer
                break
            }
        }
        return moved
    }

    public func recvAck(_ buffer: Buffer, context: ProcessContext) {
        channel.send(LinkMessage(kind: .ack, token: UInt32(buffer.slot)))
    }

    public func recvNak(_ buffer: Buffer, reason: DropReason, context: ProcessContext) {
        remote.noteNak(buffer, reason: reason)
    }

    public func endOfStream(context: ProcessContext) {
        if let buffer = pending {
            pending = nil
            buffer.dropHold(fate: context.abandoning ? .abandoned : .dropped)
        }
    }
}

/// The child's queue for one exit of its part: buffers given to it go back to
/// the parent, which sends them on from the link's pad `pad`.
///
/// Threading: the child's graph thread.
@_spi(Runtime) public final class ChildExit: BufferProcessor {
    private let remote: RemoteBuffers
    private let pad: Int

    public init(remote: RemoteBuffers, pad: Int) {
        self.remote = remote
        self.pad = pad
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        remote.markExit(buffer, pad: pad)
        context.doneBuffer(buffer)
        return .ok
    }
}

/// What a child process runs for one `child` queue: the child's graph
/// config and the channel it reports through. Made by `prepare` from the
/// command-line words the parent passed; used by `ChildProgram.run`.
///
/// Threading: any one thread.
@_spi(Runtime) public final class ChildSide: @unchecked Sendable {
    /// The child's graph: ingress, the part's queues, one queue per exit.
    public let config: QueueGraphConfig
    private let channel: ChildChannel
    private let names: [String]

    /// Maps the channel `spec` names and builds the child's graph for the
    /// part of `child` queue `queue`. The process dies with its parent.
    public init(config declared: QueueGraphConfig, queue: String, channel spec: String) throws {
        _ = qg_die_with_parent()
        unsetenv(ChildLink.childEnvironment)   // handed over: the child's own graph may start children
        guard let spec = ChildChannelSpec(spec) else { throw ProcessorError("found channel '\(spec)', expected PPID,FD,ID:FD:BYTES…") }
        guard getppid() == spec.parent else { throw ProcessorError("the parent process \(spec.parent) has ended") }
        let channel = try ChildChannel(spec)
        (config, names) = try declared.partSide(queue: queue, threading: .child, channel: channel)
        self.channel = channel
    }

    /// Publishes the child's counters for the parent's statistics.
    public func publish(_ statistics: GraphStatistics) {
        ChannelStatistics.write(statistics, queues: names, to: channel.control)
    }

    /// Says the child's graph has ended (after the last `publish`).
    public func finish() {
        ChannelLayout.field(.finished, in: channel.control).store(1, ordering: .sequentiallyConsistent)
        channel.parentEvent.notify()
    }
}

extension QueueGraphConfig {
    /// The graph a far side runs for the part of queue `queue` (whose
    /// threading must be `threading`), fed through `channel`, and the part's
    /// queue names (whose statistics the parent merges).
    @_spi(Runtime) public func partSide(queue: String, threading: QueueThreading,
                                       channel: any PartChannel) throws -> (config: QueueGraphConfig, names: [String]) {
        let plan = try validate()
        guard let part = plan.childParts.first(where: { queues[$0.queue].name == queue && queues[$0.queue].threading == threading }) else {
            throw ProcessorError("the graph has no queue '\(queue)' with threading '\(threading.rawValue)'")
        }
        let remote = RemoteBuffers(name: "\(queue) (from parent)", channel: channel)
        let ingress = ChildIngress(channel: channel, remote: remote)
        let config = childSide(part: part, makeIngress: { ingress }, remote: { remote }, makeExit: { ChildExit(remote: remote, pad: $0) })
        return (config, part.members.map { queues[$0].name })
    }
}
