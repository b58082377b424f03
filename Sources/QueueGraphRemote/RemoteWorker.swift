import CUCX
import DequeModule
import Foundation
@_spi(Runtime) import QueueGraphCore
import QueueGraphRender
import QueueGraphRuntime
import Synchronization

/// The worker daemon (`qgraph worker`): on one host, it listens on the
/// address it is given, and for each coordinator that proves the shared key
/// it runs the graph part asked for, fed over UCX.
///
/// A session: the worker sends a challenge as soon as a peer connects; a
/// peer that does not answer with the key's proof within
/// `authenticationTimeout`, or sends anything else first, is refused and
/// logged. A proven coordinator sends `run` (the graph file and the remote
/// queue); the worker builds the part (`QueueGraphConfig.partSide`), starts
/// it, and says `ready`. Buffers then arrive into registered memory by
/// rendezvous; what becomes of them goes back as replies; statistics go
/// back every tick. Malformed messages end the session, never the worker.
/// A coordinator that goes silent for `deadAfter` (or whose endpoint fails)
/// has its part stopped (what it held is abandoned).
///
/// Threading: `init` and `stop` on any one thread; everything else on the
/// node's progress thread.
public final class RemoteWorker: UCXNodeDelegate, @unchecked Sendable {
    /// Builds a graph from a graph file's text (read as if at `path`); throws its errors.
    public typealias ConfigMaker = @Sendable (_ text: String, _ path: String) throws -> QueueGraphConfig

    private let key: SharedKey
    private let makeConfig: ConfigMaker
    private let log: @Sendable (String) -> Void
    private let timing: RemoteTiming
    private var node: UCXNode!
    private var sessions: [Endpoint: WorkerSession] = [:]
    /// Sessions so far, refused ones included (their number in the log).
    private var sessionCount = 0

    /// How long a peer may take to prove the key.
    static let authenticationTimeout: UInt64 = 5_000_000_000

    /// Listens on `address`:`port` (that address only).
    public init(address: String, port: Int, key: SharedKey, timing: RemoteTiming = RemoteTiming(),
                log: @escaping @Sendable (String) -> Void, makeConfig: @escaping ConfigMaker) throws {
        self.key = key
        self.makeConfig = makeConfig
        self.log = log
        self.timing = timing
        node = try UCXNode(delegate: self, tickNanoseconds: timing.tickNanoseconds, toward: address)
        try node.listen(address: address, port: port)
        node.start(name: "qg-worker")
        log("listening on \(address):\(port)")
    }

    /// Stops every part and the node.
    public func stop() {
        node.post { [self] in for session in sessions.values { end(session, why: "the worker stops") } }
        node.stop()
    }

    // MARK: The node's callbacks

    func connecting(_ request: UnsafeMutableRawPointer, peer: String) {
        sessionCount += 1
        guard let endpoint = node.accept(request) else {
            log("session \(sessionCount): could not accept \(peer)")
            return
        }
        let session = WorkerSession(number: sessionCount, peer: peer, endpoint: endpoint, now: monotonicNanoseconds())
        sessions[endpoint] = session
        node.send(.challenge, to: endpoint, session.challenge)
    }

    func arrived(_ id: WireID, from endpoint: Endpoint?, header: UnsafeRawBufferPointer,
                 data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) {
        guard let endpoint, let session = sessions[endpoint] else { return }   // no reply endpoint: not one of ours
        session.lastHeard = monotonicNanoseconds()
        if let problem = handle(id, session, header: header, data: data, length: length, rendezvous: rendezvous) {
            refuse(session, problem)
        }
    }

    func failed(_ endpoint: Endpoint, status: Int32) {
        guard let session = sessions[endpoint] else { return }
        if case .finished = session.state {
            return end(session, why: "the coordinator closed it")   // after its part finished: the usual end
        }
        end(session, why: "its endpoint failed: \(String(cString: qgx_status_string(status)))")
    }

    func tick(now: UInt64, stalled: UInt64) {
        for session in Array(sessions.values) {
            session.lastHeard = min(now, session.lastHeard + stalled)
            switch session.state {
            case .challenged:
                if now - session.since > Self.authenticationTimeout { refuse(session, "no proof of the key within \(Self.authenticationTimeout / 1_000_000_000) s") }
                continue
            case .running(let part):
                part.publish()
                if part.graph.waitUntilFinished(timeoutNanoseconds: 0) {
                    part.publish(final: true)
                    node.send(.finished, to: session.endpoint, MessageCount.bytes(part.channel.repliesSent))
                    session.state = .finished(part)
                    log("session \(session.number): part '\(part.queue)' finished")
                }
            case .authenticated, .starting, .serving, .finished:
                break
            }
            node.send(.heartbeat, to: session.endpoint)
            let deadAfter = session.silenceMilliseconds.map { UInt64($0) * 1_000_000 } ?? timing.deadAfterNanoseconds
            if now - session.lastHeard > deadAfter {
                end(session, why: "no word from it for \(deadAfter / 1_000_000) ms")
            }
        }
    }

    // MARK: Sessions

    /// Acts on one message; returns why the session must end, or nil.
    private func handle(_ id: WireID, _ session: WorkerSession, header: UnsafeRawBufferPointer,
                        data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) -> String? {
        switch (id, session.state) {
        case (.control, _):
            guard header.count == 1, let kind = ControlKind(rawValue: header[0]) else { return "a malformed control message" }
            guard !rendezvous, length <= 16 << 20 else { return "a control message of \(length) bytes" }
            let bytes = length > 0 && data != nil ? [UInt8](UnsafeRawBufferPointer(start: data, count: length)) : []
            return control(kind, bytes, session)
        case (.buffer, .running(let part)):
            return part.channel.arrive(header: header, data: data, length: length, rendezvous: rendezvous)
        case (.buffers, .running(let part)):
            return part.channel.arrive(batch: data, length: length, rendezvous: rendezvous)
        case (.buffer, _), (.buffers, _):
            return "a buffer before any part runs"
        case (.tile, .serving(let server)):
            guard !rendezvous, length == 0 else { return "a tile request with data" }
            return server.ask(header)
        default:
            return "message \(id) from a coordinator"
        }
    }

    private func control(_ kind: ControlKind, _ bytes: [UInt8], _ session: WorkerSession) -> String? {
        switch (kind, session.state) {
        case (.heartbeat, _):
            return nil
        case (.response, .challenged):
            guard bytes.count == 2 * SharedKey.proofLength,
                  SharedKey.same(Array(bytes[..<32]), key.proof("qgraph coordinator", on: session.challenge)) else {
                return "a wrong proof of the key"
            }
            session.state = .authenticated
            node.send(.accepted, to: session.endpoint, key.proof("qgraph worker", on: Array(bytes[32...])))
            log("session \(session.number): \(session.peer) proved the key")
            return nil
        case (.run, .authenticated):
            guard let request = try? JSONDecoder().decode(RunRequest.self, from: Data(bytes)) else { return "a malformed run request" }
            guard request.protocolVersion == RunRequest.protocolVersion else {
                return "a coordinator speaking wire protocol \(request.protocolVersion ?? 1), this worker \(RunRequest.protocolVersion): run the same QueueGraph release on both"
            }
            session.state = .starting
            session.silenceMilliseconds = request.silenceMilliseconds.map { min(max($0, 20), 600_000) }
            // Building and starting a part waits for its threads: not on the progress thread.
            let thread = spawnThread(name: "qg-start-\(session.number)") { [self] in
                let result = Result { () throws -> WorkerSession.State in
                    if let server = request.server { return .serving(try startServer(request, server: server, session)) }
                    return .running(try startPart(request, session))
                }
                node.post { [self] in started(session, request, result) }
            }
            pthread_detach(thread)
            return nil
        case (.endOfStream, .running(let part)):
            guard let count = MessageCount.read(bytes) else { return "a malformed end of stream" }
            part.channel.endStream(after: count)
            return nil
        case (_, .challenged):
            return "\(kind) before proving the key"
        default:
            return "\(kind) out of turn"
        }
    }

    /// A part's (or server's) start ended (progress thread, outside UCX's callbacks).
    private func started(_ session: WorkerSession, _ request: RunRequest, _ result: Result<WorkerSession.State, any Error>) {
        switch result {
        case .success(let state) where sessions[session.endpoint] === session:
            session.state = state
            node.send(.ready, to: session.endpoint, RunRequest.versionBytes)
            let what = request.server.map { "server \($0) of '\(request.queue)'" } ?? "part '\(request.queue)'"
            log("session \(session.number): runs \(what) of \(request.path) for \(session.peer)")
        case .success(let state):
            stopped(state)   // the coordinator went away meanwhile
        case .failure(let error):
            session.state = .authenticated
            node.send(.failed, to: session.endpoint, Array("\(error)".utf8))
            log("session \(session.number): cannot run the part: \(error)")
        }
    }

    /// Server `server` of compound queue `request.queue`: its `PartWork`, made from the graph file.
    private func startServer(_ request: RunRequest, server: Int, _ session: WorkerSession) throws -> TileServer {
        let declared = try makeConfig(request.file, request.path)
        guard let queue = declared.queues.first(where: { $0.name == request.queue }), server < queue.servers,
              let compound = queue.processor(queue) as? CompoundNode else {
            throw ProcessorError("the graph has no compound queue '\(request.queue)' with a server \(server)")
        }
        return try TileServer(work: compound.work, node: node, endpoint: session.endpoint)
    }

    /// Stops what a session ran: a part's graph (abandoning what it holds) or a server.
    private func stopped(_ state: WorkerSession.State) {
        switch state {
        case .running(let part):
            _ = part.graph.stop(.abandon)
        case .serving(let server):
            server.stop()
        default:
            return
        }
    }

    private func startPart(_ request: RunRequest, _ session: WorkerSession) throws -> RunningPart {
        guard request.capacity > 0, request.capacity <= 1 << 16, request.capacity & (request.capacity - 1) == 0 else {
            throw ProcessorError("found a window of \(request.capacity), expected a power of two up to 65536")
        }
        let declared = try makeConfig(request.file, request.path)
        let channel = try WorkerChannel(node: node, endpoint: session.endpoint, capacity: request.capacity, format: request.format,
                                        returnsPayload: request.returnsPayload)
        let (config, names) = try declared.partSide(queue: request.queue, threading: .remote, channel: channel)
        let graph = try config.createQueueGraph()
        try graph.start()
        return RunningPart(queue: request.queue, graph: graph, channel: channel, names: names, node: node, endpoint: session.endpoint)
    }

    /// Refuses a peer: says why, logs it and closes the session.
    private func refuse(_ session: WorkerSession, _ why: String) {
        log("session \(session.number): refused \(session.peer): \(why)")
        node.send(.refused, to: session.endpoint, Array(why.utf8))
        end(session, why: nil, flush: true)
    }

    /// Stops the session's part (abandoning what it holds) and closes it.
    /// Callbacks run inside UCX's progress, which may neither wait for the
    /// part's threads nor progress again: the work is posted.
    private func end(_ session: WorkerSession, why: String?, flush: Bool = false) {
        guard sessions[session.endpoint] === session else { return }
        if let why { log("session \(session.number): ended: \(why)") }
        sessions[session.endpoint] = nil
        let state = session.state
        session.state = .finished(nil)
        node.post { [self] in
            stopped(state)
            node.close(session.endpoint, flush: flush)
        }
    }
}

/// One coordinator's session with a worker. Progress thread only (a part's start thread reads `endpoint`).
final class WorkerSession: @unchecked Sendable {
    enum State {
        /// A finished part stays until its endpoint is closed: its last
        /// replies may still be sending from its landing memory.
        case challenged, authenticated, starting, running(RunningPart), serving(TileServer), finished(RunningPart?)
    }

    let number: Int
    let peer: String
    let endpoint: Endpoint
    let challenge = SharedKey.challenge()
    let since: UInt64
    var lastHeard: UInt64
    var state = State.challenged
    /// The coordinator's `silence-ms` for this session, once it asked to run something.
    var silenceMilliseconds: Int?

    init(number: Int, peer: String, endpoint: Endpoint, now: UInt64) {
        (self.number, self.peer, self.endpoint, since, lastHeard) = (number, peer, endpoint, now, now)
    }
}

/// A part a worker runs, and the channel that feeds it.
final class RunningPart: @unchecked Sendable {
    let queue: String
    let graph: QueueGraph
    let channel: WorkerChannel
    let names: [String]
    private let node: UCXNode
    private let endpoint: Endpoint

    init(queue: String, graph: QueueGraph, channel: WorkerChannel, names: [String], node: UCXNode, endpoint: Endpoint) {
        (self.queue, self.graph, self.channel, self.names, self.node, self.endpoint) = (queue, graph, channel, names, node, endpoint)
    }

    /// Sends the part's counters to the coordinator (after the graph ended, its
    /// final ones, after the replies its stop batched).
    func publish(final: Bool = false) {
        let statistics = final ? graph.stop(.abandon) : graph.statistics()
        if final { channel.flush() }
        let words = ChannelStatistics.encode(statistics, queues: names)
        _ = words.withUnsafeBytes { node.send(.statistics, to: endpoint, header: UnsafeRawBufferPointer(start: nil, count: 0), bytes: $0) }
    }
}

/// The worker's end of a link (`PartChannel`): buffers land by rendezvous
/// in one registered landing region, one slot per window token (a slot
/// grows when a larger buffer comes), and go on `down` to the part's
/// ingress; replies go back over the endpoint, a send's payload straight
/// from its slot.
///
/// Threading: `arrive`, `endStream` and the landing callbacks on the
/// progress thread; `send` on the part's thread; `down` as `SharedRing`.
final class WorkerChannel: PartChannel, @unchecked Sendable {
    let capacity: Int
    let down: SharedRing
    let wake = WakeEvent()
    private let ringMemory: UnsafeMutableRawPointer
    private let landing: SharedMemory
    private let node: UCXNode
    private let endpoint: Endpoint
    private let format: UInt32
    private let returnsPayload: Bool
    /// Per token: its slot (offset and bytes in `landing`, and its registration).
    private let slots: UnsafeMutableBufferPointer<(offset: Int, bytes: Int, memh: OpaquePointer?)>
    /// Per token: a buffer arrived and not yet handed on, and whether its payload has landed.
    private var arrivals: [(message: LinkMessage, landed: Bool)?]
    /// Tokens in the order their buffers arrived: each is handed on once
    /// its payload has landed and every buffer before it has been (a large
    /// one lands by rendezvous while smaller ones after it come at once).
    private var order = Deque<Int>()
    /// The buffers the coordinator sent before its end of stream (-1 until it came), and those arrived so far.
    private let expected = Atomic<Int>(-1)
    private let arrived = Atomic<Int>(0)
    /// Replies sent (batched or not): `finished` says how many.
    private let replies = Atomic<Int>(0)
    /// Replies waiting to go together (the part's threads; a stop releases from another).
    private let batch = Locked<[LinkMessage]>([])
    static let batchLimit = 16
    /// Buffers arrived and not yet on `down`.
    private let waiting = Atomic<Int>(0)

    /// The largest buffer accepted.
    static let maxBuffer = 1 << 30

    init(node: UCXNode, endpoint: Endpoint, capacity: Int, format: UInt32, returnsPayload: Bool) throws {
        self.returnsPayload = returnsPayload
        self.node = node
        self.endpoint = endpoint
        self.capacity = capacity
        self.format = format
        ringMemory = UnsafeMutableRawPointer.allocate(byteCount: SharedRing.bytes(capacity: capacity), alignment: 128)
        ringMemory.initializeMemory(as: UInt8.self, repeating: 0, count: SharedRing.bytes(capacity: capacity))
        down = SharedRing(at: ringMemory, capacity: capacity)
        landing = try SharedMemory(name: "qg-landing", size: 0, reserve: 1 << 40, registered: false)
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: (0, 0, nil))
        arrivals = Array(repeating: nil, count: capacity)
    }

    deinit {
        for slot in slots { if let memh = slot.memh { qgx_mem_unmap(node.raw, memh) } }
        slots.deallocate()
        ringMemory.deallocate()
    }

    func region(_ id: UInt32) -> (base: UnsafeMutableRawPointer, bytes: Int)? { id == landing.id ? (landing.base, landing.reserved) : nil }

    /// The coordinator's stream has ended and every buffer it sent before
    /// the end has arrived (the end may come first: UCX may pass a queued
    /// send) and gone on to the ingress. `arrived` is read before `waiting`:
    /// an arrival counts in `waiting` before it counts in `arrived`.
    var endOfStream: Bool {
        let expected = expected.load(ordering: .acquiring)
        return expected >= 0 && arrived.load(ordering: .acquiring) >= expected && waiting.load(ordering: .acquiring) == 0
    }

    /// The coordinator sent `count` buffers, then its end of stream.
    func endStream(after count: Int) {
        expected.store(count, ordering: .releasing)
        wake.notify()
    }

    /// Replies sent so far (the part's thread counts them; read once the part has stopped).
    var repliesSent: Int { replies.load(ordering: .acquiring) }

    /// The ingress's thread started; the worker says `ready` once the whole part has.
    func ready() {}

    /// Replies without payload wait in a batch (sent when it is full, before
    /// a reply with payload, and when the part's thread is about to sleep):
    /// one message for many buffers. A send with payload goes at once.
    func send(_ message: LinkMessage) {
        replies.add(1, ordering: .releasing)
        var message = message
        let slot = slots[Int(message.token)]
        let payload = returnsPayload && message.kind == LinkMessage.Kind.send.rawValue ? Int(min(message.size, UInt64(slot.bytes))) : 0
        guard payload > 0 else {
            if batch.withLock({ $0.append(message); return $0.count >= Self.batchLimit }) { flush() }
            return
        }
        flush()
        let status = withUnsafeBytes(of: &message) { header in
            qgx_send(endpoint, WireID.reply.rawValue, header.baseAddress, header.count, landing.base + slot.offset, payload,
                     slot.memh, 0, 0, nil, nil, 0)
        }
        if status == 1 { node.kick() }
    }

    func flush() {
        // Sent under the lock (UCX copies the batch): the batch's storage is kept, nothing is allocated.
        let status = batch.withLock { batch -> Int32 in
            guard !batch.isEmpty else { return 0 }
            defer { batch.removeAll(keepingCapacity: true) }
            return batch.withUnsafeBytes { qgx_send(endpoint, WireID.replies.rawValue, nil, 0, $0.baseAddress, $0.count, nil, 0, 1, nil, nil, 0) }
        }
        if status == 1 { node.kick() }
    }

    /// A buffer message arrived: land its payload in the token's slot, then
    /// hand it to the ingress. Returns why it is refused, or nil.
    func arrive(header: UnsafeRawBufferPointer, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) -> String? {
        guard let message = LinkMessage(header: header) else { return "a malformed buffer message" }
        return arrive(message, data: data, length: length, rendezvous: rendezvous)
    }

    /// A batch of small buffers arrived (`BufferBatch`): each lands as if it came alone.
    func arrive(batch data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) -> String? {
        guard !rendezvous else { return "a batch of buffers by rendezvous" }
        return BufferBatch.entries(in: data, length: length) { arrive($0, data: $1, length: $2, rendezvous: false) }
    }

    private func arrive(_ message: LinkMessage, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) -> String? {
        var message = message
        guard message.kind == LinkMessage.Kind.buffer.rawValue else { return "a malformed buffer message" }
        let token = Int(message.token)
        guard token < capacity, arrivals[token] == nil, message.size == UInt64(length), length <= Self.maxBuffer else {
            return "a buffer message naming token \(message.token) of \(length) bytes (window \(capacity))"
        }
        guard message.format == format else { return "a buffer of format \(message.format), expected \(format)" }
        guard let slot = slot(token, bytes: length) else { return "no memory for a buffer of \(length) bytes" }
        (message.region, message.offset) = (landing.id, UInt64(slot.offset))
        arrivals[token] = (message, landed: !rendezvous)
        order.append(token)
        waiting.add(1, ordering: .relaxed)
        arrived.add(1, ordering: .releasing)   // after `waiting`: see `endOfStream`
        if !rendezvous {
            if length > 0 { (landing.base + slot.offset).copyMemory(from: data!, byteCount: length) }
            return handOn()
        }
        switch qgx_recv_data(node.raw, data, landing.base + slot.offset, length, slot.memh, bufferLanded,
                             Unmanaged.passUnretained(self).toOpaque(), UInt64(token)) {
        case 0: return landed(token, status: 0)
        case 1: return nil
        case let status: return "its payload could not be received: \(String(cString: qgx_status_string(status)))"
        }
    }

    /// The token's slot, grown to hold `bytes`.
    private func slot(_ token: Int, bytes: Int) -> (offset: Int, bytes: Int, memh: OpaquePointer?)? {
        if slots[token].bytes < bytes {
            let size = (bytes + 4095) & ~4095
            let offset = landing.size
            do throws(SharedMemoryError) { try landing.grow(to: offset + size) } catch { return nil }
            if let memh = slots[token].memh { qgx_mem_unmap(node.raw, memh) }
            slots[token] = (offset, size, qgx_mem_map(node.raw, landing.base + offset, size))
        }
        return slots[token]
    }

    /// The payload of `token` has landed (or failed to).
    @discardableResult
    func landed(_ token: Int, status: Int32) -> String? {
        guard arrivals[token]?.landed == false else { return nil }
        guard status == 0 else {
            arrivals[token] = nil   // the session ends; the buffer is never handed on
            waiting.subtract(1, ordering: .releasing)
            return "a payload failed to land: \(String(cString: qgx_status_string(status)))"
        }
        arrivals[token]!.landed = true
        return handOn()
    }

    /// Hands the buffers that have landed to the ingress, in the order they arrived.
    private func handOn() -> String? {
        defer { wake.notify() }
        while let token = order.first {
            guard let arrival = arrivals[token] else {
                order.removeFirst()   // failed to land
                continue
            }
            guard arrival.landed else { return nil }
            order.removeFirst()
            arrivals[token] = nil
            guard down.push(arrival.message) else { return "more buffers than its window" }
            waiting.subtract(1, ordering: .releasing)   // after the push: the ingress sees the end only behind it
        }
        return nil
    }
}

private let bufferLanded: @convention(c) (UnsafeMutableRawPointer?, UInt64, Int32) -> Void = { arg, token, status in
    Unmanaged<WorkerChannel>.fromOpaque(arg!).takeUnretainedValue().landed(Int(token), status: status)
}

/// How often peers speak when idle, and how long a silence means the peer is gone.
/// A value; any thread.
public struct RemoteTiming: Sendable {
    /// Heartbeats, statistics and deadline checks, this often.
    public var tickNanoseconds: UInt64
    /// A peer heard nothing from for this long is taken as gone (a cut network, a frozen host).
    public var deadAfterNanoseconds: UInt64

    public init(tickNanoseconds: UInt64 = 25_000_000, deadAfterNanoseconds: UInt64 = 150_000_000) {
        self.tickNanoseconds = tickNanoseconds
        self.deadAfterNanoseconds = deadAfterNanoseconds
    }
}
