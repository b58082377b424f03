import CUCX
@_spi(Runtime) import QueueGraphCore
import QueueGraphRender
import QueueGraphRuntime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a compound server on a worker is asked: tile `number` of the frame
/// whose 128-byte header it carries (size, format, frame job: all a
/// `PartWork` reads), the part, and the split mode. 176 bytes.
struct TileRequest {
    static let bytes = 48 + Frame.headerSize

    var number: UInt64
    var part: SplitPart
    var mode: SplitMode

    func encoded(frameHeader: UnsafeRawPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.bytes)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: number, toByteOffset: 0, as: UInt64.self)
            for (i, value) in [part.x0, part.y0, part.x1, part.y1].enumerated() { raw.storeBytes(of: value, toByteOffset: 8 + 8 * i, as: Double.self) }
            raw.storeBytes(of: UInt64(SplitMode.allCases.firstIndex(of: mode)!), toByteOffset: 40, as: UInt64.self)
            (raw.baseAddress! + 48).copyMemory(from: frameHeader, byteCount: Frame.headerSize)
        }
        return out
    }

    /// The request in `bytes` and where its frame header is; nil when malformed.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count == Self.bytes else { return nil }
        let mode = Int(bytes.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
        let values = (0..<4).map { bytes.loadUnaligned(fromByteOffset: 8 + 8 * $0, as: Double.self) }
        guard mode < SplitMode.allCases.count, values.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 65536 }) else { return nil }
        number = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        part = SplitPart(x0: values[0], y0: values[1], x1: values[2], y1: values[3])
        self.mode = SplitMode.allCases[mode]
    }

    init(number: UInt64, part: SplitPart, mode: SplitMode) { (self.number, self.part, self.mode) = (number, part, mode) }
}

/// The pixel rectangle of `part` inside a `width`×`height` frame.
func tileRectangle(_ part: SplitPart, width: Int, height: Int) -> (columns: Range<Int>, rows: Range<Int>) {
    (part.pixelColumns.clamped(to: 0..<width), part.pixelRows.clamped(to: 0..<height))
}

/// Server `server` of a compound queue, on another host (`server-hosts`):
/// each frame it sends the worker the frame's header and its part, and
/// waits for the part's pixels, which land in a staging buffer and are
/// copied into the frame's rows. The compound node times the whole round,
/// so the load balancer weighs the transfer too. While its host has failed
/// or is silent, `render` throws at once (the compound node renders the
/// part itself) and the session reconnects, every 200 ms, until the worker
/// is back.
///
/// Threading: as `PartServer`; UCX's callbacks on the session's progress thread.
final class RemoteServer: PartServer, SessionOwner, @unchecked Sendable {
    private let session: CoordinatorSession
    private let request: RunRequest
    private let wake = WakeEvent()
    /// The number of the last tile whose pixels have landed.
    private let landedTile = Atomic<UInt64>(0)
    // Written by the server's thread before it sends a request; read by the progress thread after.
    private var number: UInt64 = 0
    private var staging: UnsafeMutableRawPointer?
    private var stagingBytes = 0
    private var expectedBytes = 0

    /// How long a tile may take, transfer included, before its part fails.
    static let tileTimeout: UInt64 = 10_000_000_000

    init(queue: String, server: Int, host: RemoteHost, key: SharedKey, file: (text: String, path: String), timing: RemoteTiming) {
        request = RunRequest(file: file.text, path: file.path, queue: queue, capacity: 1, format: 0, returnsPayload: true, server: server)
        session = CoordinatorSession(host: host, key: key, timing: timing, wake: wake)
    }

    deinit { staging?.deallocate() }

    func start() throws {
        try session.begin(owner: self, name: "qg-srv\(request.server!)-\(request.queue)", request: request)
        try session.waitUntilRunning(timeout: RemoteLink.startTimeout)
    }

    func stop() { session.end() }

    func render(_ frame: Frame, part: SplitPart, mode: SplitMode) throws {
        if session.state == .failed { session.retry() }
        guard session.state == .running else {
            throw ProcessorError("\(session.host.label) is not connected: \(session.failure.withLock { $0 } ?? "connecting")")
        }
        let (columns, rows) = tileRectangle(part, width: frame.width, height: frame.height)
        let bytes = columns.count * rows.count * 4
        guard bytes > 0 else { return }
        if stagingBytes < bytes {
            staging?.deallocate()
            (staging, stagingBytes) = (.allocate(byteCount: bytes, alignment: 64), bytes)
        }
        number += 1
        expectedBytes = bytes
        let header = TileRequest(number: number, part: part, mode: mode).encoded(frameHeader: frame.buffer.payload.baseAddress!)
        let status = session.withEndpoint { endpoint in
            guard let endpoint else { return Int32(-1) }
            return header.withUnsafeBytes { qgx_send(endpoint, WireID.tile.rawValue, $0.baseAddress, $0.count, nil, 0, nil, 0, 0, nil, nil, 0) }
        }
        guard status >= 0 else { throw ProcessorError("cannot send the part to host '\(session.host.name)'") }
        if status == 1 { session.node.kick() }
        let deadline = monotonicNanoseconds() &+ Self.tileTimeout
        let wanted = number
        while landedTile.load(ordering: .acquiring) != wanted {
            guard session.state == .running, monotonicNanoseconds() < deadline else {
                if session.state == .running { endTimedOutSession() }
                throw ProcessorError("\(session.host.label) did not render its part: \(session.failure.withLock { $0 } ?? "timed out")")
            }
            _ = wake.wait(timeoutNanoseconds: 10_000_000) { landedTile.load(ordering: .acquiring) == wanted || session.news.load(ordering: .acquiring) }
            session.news.store(false, ordering: .relaxed)
        }
        let rowBytes = columns.count * 4
        for (i, y) in rows.enumerated() {
            UnsafeMutableRawPointer(frame.pixels + y * frame.width + columns.lowerBound).copyMemory(from: staging! + i * rowBytes, byteCount: rowBytes)
        }
    }

    /// A part that timed out ends its session before the next frame reuses
    /// `staging`: its pixels, if they still come, cannot land there late.
    private func endTimedOutSession() {
        session.node.post { [session] in session.fail("did not render a part within \(Self.tileTimeout / 1_000_000_000) s") }
        let until = monotonicNanoseconds() &+ 1_000_000_000
        while session.state == .running && monotonicNanoseconds() < until {
            _ = wake.wait(timeoutNanoseconds: 10_000_000) { session.state != .running }
        }
    }

    // MARK: The session's messages (progress thread)

    func received(_ id: WireID, header: UnsafeRawBufferPointer, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) {
        guard id == .tileDone, header.count == 8, header.loadUnaligned(as: UInt64.self) == number, length == expectedBytes else {
            return session.fail("sent \(id) that does not answer tile \(number)")
        }
        if !rendezvous {
            staging!.copyMemory(from: data!, byteCount: length)
            return landed(number, status: 0)
        }
        switch qgx_recv_data(session.node.raw, data, staging, length, nil, tileLanded, Unmanaged.passUnretained(self).toOpaque(), number) {
        case 0: landed(number, status: 0)
        case 1: break
        case let status: session.fail("a part's pixels could not be received: \(String(cString: qgx_status_string(status)))")
        }
    }

    func landed(_ tile: UInt64, status: Int32) {
        guard status == 0 else { return session.fail("a part's pixels failed to land: \(String(cString: qgx_status_string(status)))") }
        landedTile.store(tile, ordering: .releasing)
        wake.notify()
    }

    func workerFinished(replies: Int) {}
    func closing() {}
}

private let tileLanded: @convention(c) (UnsafeMutableRawPointer?, UInt64, Int32) -> Void = { arg, tile, status in
    Unmanaged<RemoteServer>.fromOpaque(arg!).takeUnretainedValue().landed(tile, status: status)
}

/// A compound queue's server on a worker: it renders the parts one
/// coordinator asks for, with the queue's own `PartWork` built from the same
/// graph file, on a thread of its own, into a frame of its own, and sends
/// each part's pixels back, row after row.
///
/// Threading: `ask` on the progress thread; `stop` on the progress thread
/// (outside UCX's callbacks); the rest on its thread.
final class TileServer: @unchecked Sendable {
    private let work: any PartWork
    private let node: UCXNode
    private let endpoint: Endpoint
    private let wake = WakeEvent()
    private let pending = Locked<[UInt8]?>(nil)
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?
    private var pool: BufferPool?
    private var buffer: Buffer?
    private var reply: (address: UnsafeMutableRawPointer, bytes: Int)?

    /// The largest frame a coordinator may ask for (8192 × 8192 RGBA).
    static let maxBytes = Frame.headerSize + 8192 * 8192 * 4

    init(work: any PartWork, node: UCXNode, endpoint: Endpoint) throws {
        try work.prepare()
        (self.work, self.node, self.endpoint) = (work, node, endpoint)
        thread = spawnThread(name: "qg-tiles") { [self] in serve() }
    }

    deinit {
        buffer?.releaseHold()
        reply?.address.deallocate()
    }

    /// A request arrived; why it is refused, or nil.
    func ask(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard TileRequest(bytes) != nil else { return "a malformed tile request" }
        guard pending.withLock({ queued in defer { if queued == nil { queued = Array(bytes) } }; return queued == nil }) else {
            return "a tile request before the last one was answered"
        }
        wake.notify()
        return nil
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.notify()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        work.finish()
    }

    private func serve() {
        while !stopping.load(ordering: .acquiring) {
            guard let bytes = pending.withLock({ $0 }) else {
                _ = wake.wait(timeoutNanoseconds: 100_000_000) { pending.withLock { $0 != nil } || stopping.load(ordering: .acquiring) }
                continue
            }
            let answered = bytes.withUnsafeBytes { renderTile($0) }
            pending.withLock { $0 = nil }
            if !answered { node.post { [node, endpoint] in node.send(.refused, to: endpoint, Array("a tile request naming no frame this worker can render".utf8)) } }
        }
    }

    /// Renders one request and sends its pixels; false when the request names no frame.
    private func renderTile(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let request = TileRequest(bytes)!
        let header = bytes.baseAddress! + 48
        let width = Int(header.loadUnaligned(fromByteOffset: 4, as: Int32.self))
        let height = Int(header.loadUnaligned(fromByteOffset: 8, as: Int32.self))
        guard width > 0, height > 0, width <= 8192, height <= 8192 else { return false }
        let needed = Frame.headerSize + width * height * 4
        if (buffer?.payload.capacity ?? 0) < needed {
            buffer?.releaseHold()
            pool = BufferPool(name: "tiles", count: 1, payloadCapacity: needed)
            buffer = pool!.createBuffer(payloadSize: needed, pad: 0)
        }
        guard let buffer else { return false }
        buffer.payload.baseAddress!.copyMemory(from: header, byteCount: Frame.headerSize)
        buffer.size = needed
        guard let frame = Frame(buffer), frame.pixelFormat == .rgba else { return false }
        let (columns, rows) = tileRectangle(request.part, width: width, height: height)
        let rowBytes = columns.count * 4
        let bytes = rowBytes * rows.count
        do {
            try work.render(frame, part: request.part, mode: request.mode, into: frame.pixels)
        } catch {
            node.post { [node, endpoint] in node.send(.failed, to: endpoint, Array("the part failed: \(error)".utf8)) }
            return true
        }
        if (reply?.bytes ?? 0) < bytes {
            reply?.address.deallocate()
            reply = (.allocate(byteCount: bytes, alignment: 64), bytes)
        }
        for (i, y) in rows.enumerated() {
            (reply!.address + i * rowBytes).copyMemory(from: frame.pixels + y * width + columns.lowerBound, byteCount: rowBytes)
        }
        // The coordinator asks for the next tile only once this one has landed: the reply memory stays put until then.
        var number = request.number
        let status = withUnsafeBytes(of: &number) { qgx_send(endpoint, WireID.tileDone.rawValue, $0.baseAddress, 8, reply!.address, bytes, nil, 0, 0, nil, nil, 0) }
        if status == 1 { node.kick() }
        return true
    }
}
