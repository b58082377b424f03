import CUCX
import Foundation
@_spi(Runtime) import QueueGraphCore
import QueueGraphRuntime
import Synchronization

/// The coordinator's side of a `remote` queue: it stands in the graph for
/// the queue and the queues that follow it on its thread, which the worker
/// of its host runs (`RemoteWorker`).
///
/// It connects over UCX, proves the shared key and checks the worker's
/// proof, sends the graph file and the queue, and waits until the part runs.
/// Each buffer then goes as one Active Message: its fields (`LinkMessage`:
/// size, sequence, priority, timestamp, the link's format) as the header,
/// the payload by rendezvous, zero-copy from the pools it registered with
/// `ucp_mem_map`; buffers of up to 8 KiB go copied, many to a message
/// (`BufferBatch`). It holds each buffer until the worker lets it go, then
/// releases it with the worker's verdict (`LinkFlights`): acks, naks, drops
/// and the pool ledger work across hosts. A window of `capacity` buffers is
/// the credit: the queue does not run while it is spent. Results the part
/// sends back land in place (or in a staging slot when others share the
/// buffer) and leave from the link's pads.
///
/// Faults: UCX's peer-failure mode reports a dead worker; heartbeats every
/// tick report a cut network (`RemoteTiming.deadAfterNanoseconds` of
/// silence). The buffers out are then dropped as `lost`; with `restart:
/// always` it reconnects (buffers wait upstream meanwhile), otherwise the
/// graph stops with the reason.
///
/// Threading: the BufferProcessor and ThreadLifecycle calls on the link's
/// scheduler thread; UCX's callbacks on the link's progress thread;
/// `statistics` and `addStatistics` any thread.
final class RemoteLink: PartLink, ThreadLifecycle, SharedWakeEventProvider, GatedProcessor, ContextAttaching, FormatAware,
    SessionOwner, @unchecked Sendable {
    /// The link as its thread sees it.
    private enum Phase { case starting, running, draining, reconnecting, ended, failed }

    let name: String
    private let session: CoordinatorSession
    private var request: RunRequest
    private let restart: ChildOptions.Restart
    let capacity: Int
    private let partQueues: [String]
    private let flights: LinkFlights
    let sharedWakeEvent = WakeEvent()
    private unowned(unsafe) var context: ProcessContext! = nil
    private var phase = Phase.starting
    /// The worker said `finished` (link thread): the link ends once every reply is taken.
    private var workerDone = false

    /// Messages from the worker, in order, once their payload has landed.
    private let up: SharedRing
    private let upMemory: UnsafeMutableRawPointer
    /// Per token: where a result sent back lands (written before the buffer goes).
    private let landings: UnsafeMutableBufferPointer<(address: UnsafeMutableRawPointer?, bytes: Int)>
    /// Per token: a staging slot for results of buffers others share.
    private let stagingSlots: UnsafeMutableBufferPointer<(address: UnsafeMutableRawPointer?, bytes: Int)>
    /// Per token: the reply whose payload is landing (progress thread).
    private let landingReplies: UnsafeMutableBufferPointer<LinkMessage?>
    /// Replies whose payload is landing (progress thread).
    private var landingCount = 0
    /// Replies heard in this session, and how many the worker said it sent once it finished (progress thread).
    private var repliesHeard = 0
    private var repliesSent: Int?
    /// Buffers sent in this session (link thread): the end of stream says how many.
    private var buffersSent = 0
    /// The pools' regions registered with UCX, by region id, and how many bytes of each.
    private var registered: [UInt32: (region: SharedMemory, memh: OpaquePointer, bytes: Int)] = [:]
    /// Registrations of regions that grew since: pending sends may still use them.
    private var retired: [OpaquePointer] = []
    /// Small buffers going out together (link thread).
    private var outgoing = BufferBatch()

    private let figures: Locked<LinkStatistics>
    private let latest = Locked<(queues: [QueueStatistics], thread: ThreadStatistics)?>(nil)
    private let rows = PartRows()
    /// Buffers sent from registered pools (zero-copy), and from other memory.
    private let zeroCopy = Atomic<Int>(0)
    private let copied = Atomic<Int>(0)

    /// How long connecting, proving and starting the part may take.
    static let startTimeout: UInt64 = 20_000_000_000

    init(config: QueueGraphConfig, part: ChildPart, host: RemoteHost, key: SharedKey, file: (text: String, path: String), timing: RemoteTiming) {
        let queue = config.queues[part.queue]
        name = queue.name
        restart = queue.child.restart
        partQueues = part.members.map { config.queues[$0].name }
        capacity = part.window(in: config)
        request = RunRequest(file: file.text, path: file.path, queue: name, capacity: capacity, format: LinkFormat.unknown.code,
                             returnsPayload: part.members.contains { config.queues[$0].buffers == .reuse })
        flights = LinkFlights(capacity: capacity)
        upMemory = .allocate(byteCount: SharedRing.bytes(capacity: 2 * capacity), alignment: 128)
        upMemory.initializeMemory(as: UInt8.self, repeating: 0, count: SharedRing.bytes(capacity: 2 * capacity))
        up = SharedRing(at: upMemory, capacity: 2 * capacity)
        landings = .allocate(capacity: capacity)
        landings.initialize(repeating: (nil, 0))
        stagingSlots = .allocate(capacity: capacity)
        stagingSlots.initialize(repeating: (nil, 0))
        landingReplies = .allocate(capacity: capacity)
        landingReplies.initialize(repeating: nil)
        figures = Locked(LinkStatistics(queue: name, host: "\(host.name) \(host.address):\(host.port)"))
        session = CoordinatorSession(host: host, key: key, timing: timing, wake: sharedWakeEvent)
    }

    deinit {
        session.end()
        for memh in registered.values.map(\.memh) + retired { qgx_mem_unmap(session.node.raw, memh) }
        for slot in stagingSlots { slot.address?.deallocate() }
        landings.deallocate()
        stagingSlots.deallocate()
        landingReplies.deallocate()
        upMemory.deallocate()
        outgoing.deallocate()
    }

    func attach(_ context: ProcessContext) {
        self.context = context
        flights.attach(context)
    }

    func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        request.format = (arriving.first ?? .unknown).code
        return []
    }

    // MARK: The session's life (link thread)

    func threadDidStart(wake: WakeEvent) throws {
        try session.begin(owner: self, name: "qg-ucx-\(name)", request: request)
        for region in SharedMemory.live() where region.size > 0 { register(region) }
        try session.waitUntilRunning(timeout: Self.startTimeout)
        phase = .running
        figures.withLock { $0.starts += 1 }
    }

    func threadWillEnd() { session.end() }

    // MARK: Buffers out

    var acceptsBuffers: Bool {
        switch phase {
        case .running: flights.mayRun
        case .ended, .failed: flights.sendsFlushed
        case .starting, .draining, .reconnecting: false
        }
    }

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        let shared = request.returnsPayload && buffer.holderCount > 1   // a result must not overwrite what others read
        guard phase == .running, let token = flights.depart(buffer, sender: context.sender, staged: shared) else {
            flights.lose(buffer)
            figures.withLock { $0.lost += 1 }
            return .ok
        }
        let t = Int(token)
        let size = buffer.size
        if shared {
            if stagingSlots[t].bytes < size {
                stagingSlots[t].address?.deallocate()
                stagingSlots[t] = (.allocate(byteCount: size, alignment: 64), size)
            }
            landings[t] = stagingSlots[t]
        } else {
            landings[t] = request.returnsPayload ? (buffer.payload.baseAddress, buffer.payload.capacity) : (nil, 0)
        }
        var message = LinkMessage(kind: .buffer, token: token)
        message.describe(buffer)
        message.format = request.format
        buffersSent += 1
        if size <= BufferBatch.largest {
            if !outgoing.fits(size) { sendBatch() }
            outgoing.append(message, payload: buffer.payload.baseAddress, size: size)
            copied.add(1, ordering: .relaxed)
            // The batch goes when full, when the window is spent, or as the thread goes to sleep.
            if !flights.hasRoom { sendBatch() }
            return .ok
        }
        sendBatch()   // in order: what was batched goes before
        let memh = registration(of: buffer)
        if memh != nil { zeroCopy.add(1, ordering: .relaxed) } else { copied.add(1, ordering: .relaxed) }
        let status = session.withEndpoint { endpoint in
            guard let endpoint else { return Int32(-1) }
            return withUnsafeBytes(of: &message) { header in
                qgx_send(endpoint, WireID.buffer.rawValue, header.baseAddress, header.count, buffer.payload.baseAddress, size,
                         memh, 0, 0, nil, nil, 0)
            }
        }
        if status == 1 { session.node.kick() }
        // A send that failed (the endpoint failed or is closing): the session's failure loses the buffer with the rest.
        return .ok
    }

    /// Sends the small buffers batched so far as one message (UCX copies it).
    private func sendBatch() {
        guard outgoing.count > 0 else { return }
        defer { outgoing.removeAll() }
        let status = session.withEndpoint { endpoint in
            guard let endpoint else { return Int32(-1) }
            return qgx_send(endpoint, WireID.buffers.rawValue, nil, 0, outgoing.bytes, outgoing.used, nil, 0, 1, nil, nil, 0)
        }
        if status == 1 { session.node.kick() }
    }

    /// The thread goes to sleep: what is batched goes now.
    func threadWillSleep() { sendBatch() }

    /// The registration of the region the buffer's payload is in, if it is
    /// in one: a region first seen, or grown past what was registered (a
    /// render engine's frame arena grows), is registered as it is now.
    @inline(__always)
    private func registration(of buffer: Buffer) -> OpaquePointer? {
        let payload = buffer.payload
        guard payload.kind == .sharedMemory, let address = payload.baseAddress else { return nil }
        let id = UInt32(truncatingIfNeeded: payload.handle)
        if let entry = registered[id], let offset = entry.region.offset(of: address, count: buffer.size), offset + buffer.size <= entry.bytes {
            return entry.memh
        }
        guard let region = registered[id]?.region ?? SharedMemory.live().first(where: { $0.id == id }),
              region.offset(of: address, count: buffer.size) != nil else { return nil }
        return register(region)
    }

    @discardableResult
    private func register(_ region: SharedMemory) -> OpaquePointer? {
        let bytes = region.size
        guard let memh = qgx_mem_map(session.node.raw, region.base, bytes) else { return nil }
        if let old = registered[region.id] { retired.append(old.memh) }
        registered[region.id] = (region, memh, bytes)
        return memh
    }

    // MARK: News from the worker (link thread)

    func serviceThread() -> Bool {
        let did = flights.take(from: up, staged: stagedResult)
        guard session.news.load(ordering: .acquiring) || (phase == .running && context.upstreamEnded) else {
            concludeIfFinished()
            return did
        }
        session.news.store(false, ordering: .relaxed)
        switch (phase, session.state) {
        case (.running, .running) where context.upstreamEnded:
            sendBatch()
            phase = .draining
            session.post(.endOfStream, MessageCount.bytes(buffersSent))
        case (.draining, .finished):
            workerDone = true
        case (.running, .failed), (.draining, .failed):
            hostFailed()
        case (.reconnecting, .running):
            phase = .running
            buffersSent = 0
            session.resumed()
            figures.withLock { $0.starts += 1 }
        default:
            break
        }
        concludeIfFinished()
        return true
    }

    private func stagedResult(_ token: Int) -> UnsafeRawPointer { UnsafeRawPointer(stagingSlots[token].address!) }

    /// Once the worker has finished and every reply it sent is taken: what is
    /// still out, it let go of without a word (lost).
    private func concludeIfFinished() {
        guard phase == .draining, workerDone, flights.sendsFlushed, !up.hasMessages else { return }
        let lost = flights.loseAll()
        if lost > 0 { figures.withLock { $0.lost += lost } }
        phase = .ended
    }

    var hasThreadWork: Bool {
        up.hasMessages || session.news.load(ordering: .acquiring) || (phase == .running && context.upstreamEnded)
            || (phase == .draining && workerDone && flights.sendsFlushed)
    }

    /// The session failed: take what arrived before, lose what is out, then reconnect or stop the graph.
    private func hostFailed() {
        outgoing.removeAll()   // its buffers are out, and lost below
        while let message = up.pop() { flights.handle(message, staged: stagedResult) }
        let lost = flights.loseAll()
        let reason = session.failure.withLock { $0 } ?? "the session ended"
        figures.withLock {
            $0.lost += lost
            $0.lastExit = reason
            $0.lastDeathDetectedAt = monotonicNanoseconds()
        }
        if let last = latest.withLock({ value in defer { value = nil }; return value }) { rows.fold(last) }
        if phase == .draining {
            phase = .ended
            return
        }
        if restart == .always {
            phase = .reconnecting
            session.retry()
            return
        }
        phase = .failed
        let host = session.host
        let message = "queue '\(name)': \(host.label): \(reason); restart: never stops the graph (set restart: always to reconnect when it is back)"
        figures.withLock { $0.failure = message }
        context.failGraph(message)
    }

    func endOfStream(context: ProcessContext) {
        flights.finish(context: context)
    }

    // MARK: The session's messages (progress thread)

    func received(_ id: WireID, header: UnsafeRawBufferPointer, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) {
        switch id {
        case .reply:
            repliesHeard += 1
            reply(header: header, data: data, length: length, rendezvous: rendezvous)
        case .replies:
            let size = MemoryLayout<LinkMessage>.size
            guard !rendezvous, length % size == 0, let data else { return session.fail("sent a malformed batch of replies") }
            repliesHeard += length / size
            for i in 0..<length / size {
                let message = (data + i * size).loadUnaligned(as: LinkMessage.self)
                guard Int(message.token) < capacity, landingReplies[Int(message.token)] == nil else { return session.fail("sent a reply for no buffer out") }
                push(message)
            }
        case .statistics:
            guard !rendezvous, length % 8 == 0 else { return }
            let words = (0..<length / 8).map { (data! + 8 * $0).loadUnaligned(as: Int64.self) }
            if let decoded = ChannelStatistics.decode(words, queues: partQueues) { latest.withLock { $0 = decoded } }
        default:
            session.fail("sent a \(id) message to a link")
        }
        concludeWhenAllHeard()
    }

    func workerFinished(replies: Int) {
        repliesSent = replies
        concludeWhenAllHeard()
    }

    /// Once the worker has finished and every reply it sent has been heard and landed.
    private func concludeWhenAllHeard() {
        if let sent = repliesSent, repliesHeard >= sent, landingCount == 0 { session.concludeFinished() }
    }

    func closing() {
        for token in 0..<capacity { landingReplies[token] = nil }
        (landingCount, repliesHeard, repliesSent) = (0, 0, nil)
    }

    /// A reply: its payload (a send's) lands where the token's landing says, then it goes up.
    private func reply(header: UnsafeRawBufferPointer, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) {
        guard let message = LinkMessage(header: header), Int(message.token) < capacity else { return session.fail("sent a malformed reply") }
        let token = Int(message.token)
        let landing = landings[token]
        guard length <= landing.bytes, landingReplies[token] == nil else {
            return session.fail("sent back \(length) bytes for a buffer of \(landing.bytes)")
        }
        if length == 0 { return push(message) }
        if !rendezvous {
            landing.address!.copyMemory(from: data!, byteCount: length)
            return push(message)
        }
        landingReplies[token] = message
        landingCount += 1
        switch qgx_recv_data(session.node.raw, data, landing.address, length, nil, replyLanded, Unmanaged.passUnretained(self).toOpaque(), UInt64(token)) {
        case 0: landed(token, status: 0)
        case 1: break
        case let status: session.fail("a result could not be received: \(String(cString: qgx_status_string(status)))")
        }
    }

    func landed(_ token: Int, status: Int32) {
        guard let message = landingReplies[token] else { return }
        landingReplies[token] = nil
        landingCount -= 1
        // A result that did not land ends the session: its buffer is lost, with the reason.
        guard status == 0 else { return session.fail("a result failed to land: \(String(cString: qgx_status_string(status)))") }
        push(message)
        concludeWhenAllHeard()
    }

    private func push(_ message: LinkMessage) {
        guard up.push(message) else { return session.fail("sent more replies than its window allows") }
        sharedWakeEvent.notify()
    }

    // MARK: Statistics

    /// The link's figures; any thread.
    func statistics() -> LinkStatistics {
        var figures = figures.withLock { $0 }
        (figures.zeroCopy, figures.copied, figures.returned) = (zeroCopy.load(ordering: .relaxed), copied.load(ordering: .relaxed), flights.returned)
        return figures
    }

    func addStatistics(to statistics: inout GraphStatistics) {
        rows.add(running: latest.withLock { $0 }, link: name, to: &statistics)
        statistics.links.append(self.statistics())
    }
}

private let replyLanded: @convention(c) (UnsafeMutableRawPointer?, UInt64, Int32) -> Void = { arg, token, status in
    Unmanaged<RemoteLink>.fromOpaque(arg!).takeUnretainedValue().landed(Int(token), status: status)
}
