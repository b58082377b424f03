import QueueGraphCore

/// Frame work that can be done in parts, at once, by a compound node's
/// servers: in the pixel modes a tile of the frame, in `db` a range of the
/// work's items (objects, layers) drawn into a partial image.
///
/// Threading: `render(_:part:mode:into:)` is called concurrently by every
/// server on the same frame, each with its own part: it may only read the
/// work's state and write the pixels of its tile (pixel modes) or its own
/// `target` (db).
public protocol PartWork: FrameWork {
    /// The split modes the work can do.
    static var splitModes: Set<SplitMode> { get }
    /// Renders `part` of `frame` into `target` (`frame.width × frame.height`
    /// pixels): in a pixel mode `target` is the frame and only the tile's
    /// pixels may be written; in `db` it is a transparent image of the
    /// server's own, composited in server order afterwards.
    func render(_ frame: Frame, part: SplitPart, mode: SplitMode, into target: UnsafeMutablePointer<UInt32>) throws
}

extension PartWork {
    /// The whole frame, as one tile.
    public func render(_ frame: Frame, engine: EngineCtx) throws {
        try render(frame, part: SplitPart(x0: 0, y0: 0, x1: Double(frame.width), y1: Double(frame.height)),
                   mode: .twoD, into: frame.pixels)
    }
}

/// A compound node's server that renders its parts elsewhere (on another
/// host: QueueGraphRemote's). Its time on a part, transfer included, is what
/// the load balancer weighs, so the split moves work away from a slow link.
///
/// Threading: `start` and `stop` on the compound queue's thread; `render`
/// on the server's thread, one frame at a time.
public protocol PartServer: AnyObject, Sendable {
    /// Before the first frame: reach the far side (throws when it cannot).
    func start() throws
    /// Renders `part` of `frame` there and writes its pixels into `frame`; throws when it could not.
    func render(_ frame: Frame, part: SplitPart, mode: SplitMode) throws
    /// After the last frame.
    func stop()
}

/// A compound queue's processor (seed 004): each frame's work is split into
/// one part per server, the servers (this queue's thread and `servers - 1`
/// helper threads) render their parts at once, and the frame goes on when
/// all are done. After each frame the load balancer moves the split from
/// the servers' times, so that they finish together. In `db` mode the
/// partial images are composited in server order. A frame whose deadline
/// has passed is dropped as late (see `RenderNode`); a part that throws
/// fails the frame, except a remote server's (`PartServer`): when its host
/// fails, this machine renders the part instead (counted in
/// `CompoundStatistics.failovers`) until the host is back.
///
/// Threading: as `BufferProcessor`; the helper threads start with the
/// queue's thread (or at the first frame) and end with it. `statistics`
/// may be read from any thread.
public final class CompoundNode: CompoundProcessor, ThreadLifecycle, FailureReporting, @unchecked Sendable {
    public let servers: Int
    public let work: any PartWork
    public private(set) var failureReason: String?
    private var balancer: LoadBalancer
    private var crew: ServerCrew?
    private let name: String
    /// Per server: nanoseconds on its part of the current frame, and how the part went.
    private let times: UnsafeMutableBufferPointer<UInt64>
    private let outcomes: UnsafeMutableBufferPointer<PartOutcome>
    /// `db`: the partial images of servers 1…
    private var partials: [UnsafeMutableBufferPointer<UInt32>] = []
    private let stats: Locked<CompoundStatistics>
    /// The servers whose parts are rendered elsewhere, by server.
    private let remote: [Int: any PartServer]

    /// `work` must support `loadBalancer.mode`; servers in `remote` render
    /// their parts through their `PartServer` (a pixel split only).
    public init(name: String = "compound", servers: Int, loadBalancer: LoadBalancerConfig, work: any PartWork,
                remote: [Int: any PartServer] = [:]) {
        precondition(type(of: work).splitModes.contains(loadBalancer.mode), "\(type(of: work)) cannot split by \(loadBalancer.mode.rawValue)")
        precondition(remote.isEmpty || loadBalancer.mode.splitsPixels, "remote servers need a pixel split")
        self.remote = remote
        self.name = name
        self.servers = servers
        self.work = work
        balancer = LoadBalancer(servers: servers, config: loadBalancer)
        times = .allocate(capacity: servers)
        outcomes = .allocate(capacity: servers)
        outcomes.initialize(repeating: .done)
        stats = Locked(CompoundStatistics(servers: servers, mode: loadBalancer.mode))
    }

    deinit {
        crew?.stop()
        times.deallocate()
        outcomes.deinitialize()
        outcomes.deallocate()
        for p in partials { p.deallocate() }
    }

    /// Counters, the last frame's parts and times, and the most recent frames.
    public var statistics: CompoundStatistics { stats.withLock { $0 } }

    public func threadDidStart(wake: WakeEvent) throws {
        for server in remote.keys.sorted() { try remote[server]!.start() }
        startCrew()
    }

    public func threadWillEnd() {
        crew?.stop()
        crew = nil
        for server in remote.values { server.stop() }
    }

    public func endOfStream(context: ProcessContext) { work.finish() }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        frameJob(buffer, context: context, failure: &failureReason) { frame in
            let record = try renderParts(frame)
            for (server, part) in record.parts.enumerated() {
                context.traceLoadBalance(frame: record.tick, server: server, part: part, workNanoseconds: record.serverNanoseconds[server])
            }
            return buffer
        }
    }

    private func startCrew() {
        if crew == nil { crew = ServerCrew(count: servers, name: name) }
    }

    /// Renders `frame` with every server on its part, composites (db),
    /// moves the split and records the frame; throws when a part threw.
    func renderParts(_ frame: Frame) throws -> CompoundFrame {
        startCrew()
        let mode = balancer.config.mode
        let parts = balancer.parts(width: frame.width, height: frame.height)
        let pixels = frame.pixelCount
        if mode == .db && partials.first?.count != pixels {
            for p in partials { p.deallocate() }
            partials = (1..<servers).map { _ in .allocate(capacity: pixels) }
        }
        let (work, times, outcomes, partials, remote) = (work, times, outcomes, partials, remote)
        let began = monotonicNanoseconds()
        crew!.run { server in
            let start = monotonicNanoseconds()
            defer { times[server] = monotonicNanoseconds() - start }
            outcomes[server] = .done
            if let elsewhere = remote[server] {
                do {
                    if !parts[server].isEmpty { try elsewhere.render(frame, part: parts[server], mode: mode) }
                    return
                } catch {
                    // Its host failed (or is reconnecting): the part is rendered here, the frame goes on.
                    outcomes[server] = .failedOver(String(describing: error))
                }
            }
            do {
                if mode == .db {
                    let target = server == 0 ? frame.pixels : partials[server - 1].baseAddress!
                    target.update(repeating: 0, count: pixels)
                    try work.render(frame, part: parts[server], mode: mode, into: target)
                } else if !parts[server].isEmpty {
                    try work.render(frame, part: parts[server], mode: mode, into: frame.pixels)
                }
            } catch {
                outcomes[server] = .failed
            }
        }
        let wall = monotonicNanoseconds() - began
        if mode == .db {
            for partial in partials {
                for i in 0..<pixels where partial[i] >> 24 != 0 { frame.pixels[i] = blendOver(partial[i], frame.pixels[i]) }
            }
        }
        // A frame with a failed part, or one rendered here for a failed host, has no true timings: the split stays.
        if outcomes.allSatisfy({ $0 == .done }) { balancer.update(parts: parts, times: times.map { Double($0) }) }
        let record = CompoundFrame(tick: frame.job.tick, wallNanoseconds: wall, serverNanoseconds: Array(times), parts: parts)
        stats.withLock { stats in
            stats.add(record)
            for (server, outcome) in outcomes.enumerated() {
                guard case .failedOver(let why) = outcome else { continue }
                stats.failovers[server] += 1
                stats.lastFailover = "server \(server): \(why)"
            }
        }
        if outcomes.contains(.failed) { throw PartFailed() }
        return record
    }

    /// How a server's part of a frame went.
    enum PartOutcome: Equatable {
        case done
        case failed
        /// Its host could not render it (why); this machine did.
        case failedOver(String)
    }

    struct PartFailed: Error, CustomStringConvertible {
        var description: String { "a server's part of the frame failed" }
    }
}

/// One frame of a compound node: its wall time from handing out the parts
/// to the last server's end, each server's time on its part, and the parts.
///
/// Threading: a value; any thread.
public struct CompoundFrame: Sendable {
    public var tick: Int64
    public var wallNanoseconds: UInt64
    public var serverNanoseconds: [UInt64]
    public var parts: [SplitPart]

    /// The wall time over the ideal one, the servers' total time shared out
    /// evenly: 1 when every server finished at once.
    public var overIdeal: Double {
        let total = serverNanoseconds.reduce(0, +)
        return total > 0 ? Double(wallNanoseconds) * Double(serverNanoseconds.count) / Double(total) : 1
    }
}

/// A compound node's counters.
///
/// Threading: a value; any thread.
public struct CompoundStatistics: Sendable {
    public var servers: Int
    public var mode: SplitMode
    public var frames = 0
    /// Each server's nanoseconds over all frames.
    public var serverNanoseconds: [UInt64]
    /// Per server: parts its host failed to render (a server on another
    /// host, `server-hosts`) that this machine rendered instead.
    public var failovers: [Int]
    /// The last failover's server and why its host failed.
    public var lastFailover: String?
    /// The most recent frames, oldest first (at most `recentLimit`).
    public var recent: [CompoundFrame] = []
    public static let recentLimit = 1024

    init(servers: Int, mode: SplitMode) {
        self.servers = servers
        self.mode = mode
        serverNanoseconds = Array(repeating: 0, count: servers)
        failovers = Array(repeating: 0, count: servers)
    }

    /// The median of the recent frames' `overIdeal` (1 without frames).
    public var medianOverIdeal: Double {
        let sorted = recent.map(\.overIdeal).sorted()
        return sorted.isEmpty ? 1 : sorted[sorted.count / 2]
    }

    mutating func add(_ frame: CompoundFrame) {
        frames += 1
        for (i, t) in frame.serverNanoseconds.enumerated() { serverNanoseconds[i] += t }
        if recent.count == Self.recentLimit { recent.removeFirst(Self.recentLimit / 4) }
        recent.append(frame)
    }
}
