import Atomics
import CQueueGraph
#if canImport(Glibc)
import Glibc
#endif

/// Figures of one `child` queue's link (its child) or `remote` queue's
/// link (its host), and what crossed.
public struct LinkStatistics: Sendable, Equatable {
    /// The `child` or `remote` queue.
    public var queue: String
    /// The host a `remote` queue's part runs on ("NAME ADDRESS:PORT"); nil for a child.
    public var host: String?
    /// The running child's pid; 0 when none runs (and for a host).
    public var pid: Int32 = 0
    /// Children started, or sessions with the host (the first and every restart).
    public var starts = 0
    /// Buffers that crossed as a handle to memory both processes map (to a
    /// host: by rendezvous from registered memory).
    public var zeroCopy = 0
    /// Buffers whose payload was copied into the channel's staging memory
    /// (it was not in a shared pool, or other holders shared it); to a host:
    /// sent by copy (batched small buffers, or outside registered memory).
    public var copied = 0
    /// Buffers the far side sent back to queues of this side.
    public var returned = 0
    /// Buffers a child held when it died, or a host when it failed (dropped as `lost`).
    public var lost = 0
    /// How the last child that ended ended ("exited with status 0", "killed by signal 9 (KILL)").
    public var lastExit: String?
    /// `CLOCK_MONOTONIC` when the parent noticed the last unexpected end.
    public var lastDeathDetectedAt: UInt64?
    /// Why the graph stopped, when the child died and `restart` is `never`
    /// or it could not be restarted.
    public var failure: String?

    public init(queue: String, host: String? = nil) {
        self.queue = queue
        self.host = host
    }
}

/// What a child link needs from the runtime: the two things the core
/// does not do itself, start a process and start a thread.
///
/// Threading: any thread.
@_spi(Runtime) public protocol ChildLauncher: Sendable {
    /// Starts `path` with `arguments` and one more environment variable
    /// (`KEY=VALUE`), keeping `fds` open in the child; returns its pid.
    func spawn(_ path: String, _ arguments: [String], environment: String, keeping fds: [Int32]) throws -> Int32
    /// Runs `body` on a new joinable thread named `name`; the caller joins it.
    func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t
}

/// The parent's side of a `child` queue (the seed's `QTT_PROC_BEGIN`): it
/// stands in the parent graph for the queue and the queues that follow it on
/// its thread, which a child process runs (`ChildPart`).
///
/// Buffers it takes cross as handles: a buffer whose payload lives in a
/// registered `SharedMemory` region (a shared `BufferPool`) goes as
/// (region, offset); any other is copied once into the channel's staging
/// region. It holds each buffer until the child lets it go, then releases it
/// with the child's verdict, so acks, naks and the pool ledger work across
/// the boundary; buffers the child sends back leave from its pads. A window
/// of `capacity` buffers bounds what the child holds; the queue does not run
/// while the window is full.
///
/// Faults: a watcher thread waits for the child to end and wakes the link's
/// thread, which also checks the child every few milliseconds while busy
/// and whenever it wakes; a child that ends unexpectedly loses the
/// buffers it held (dropped as `lost`, naked on a `nak` queue), and is
/// restarted (`restart: always`) or stops the graph with an error.
///
/// Threading: everything runs on the scheduler thread of the link's group,
/// except `statistics` and `addStatistics` (any thread).
final class ChildLink: PartLink, ThreadLifecycle, SharedWakeEventProvider, GatedProcessor, ContextAttaching, @unchecked Sendable {
    private enum Phase { case starting, running, draining, ended, failed }

    let name: String
    let options: ChildOptions
    /// Spawns the child and starts the watcher thread: the runtime's, the core starts neither.
    private let launcher: any ChildLauncher
    /// Names of the child's queues whose statistics are merged (the part's queues).
    private let childQueues: [String]
    let capacity: Int
    private let control: SharedMemory
    private let staging: SharedMemory
    let sharedWakeEvent: WakeEvent
    private let childEvent: WakeEvent
    private let down: SharedRing
    private let up: SharedRing
    private unowned(unsafe) var context: ProcessContext! = nil

    private var phase = Phase.starting
    private var pid: Int32 = 0
    private var generation: UInt32 = 0
    /// What is out in the child, by window token.
    private let flights: LinkFlights
    /// Per token, its slot in `staging` (slots grow at the region's end).
    private var stagingSlots: [(offset: Int, capacity: Int)]
    /// The payload regions the running child maps, by id.
    private var childRegions: [UInt32: SharedMemory] = [:]
    private var nextCheck: UInt64 = 0
    /// Waits for the running child to end (on its pidfd); set with `pid`.
    private var watcher: (ended: ManagedAtomic<Bool>, thread: pthread_t, pidfd: Int32)?
    private let figures: Locked<LinkStatistics>
    /// Counters on the hot path, written by the link's thread only.
    private let lines = AtomicLines(count: 2)
    private var zeroCopy: Counter { lines.counter(0) }
    private var copied: Counter { lines.counter(1) }
    /// The rows of children that have ended, summed; the running child's are added on reading.
    private let rows = PartRows()

    /// How often the thread checks the child while it runs.
    private static let checkInterval: UInt64 = 5_000_000
    /// How long a child may take to map the channel and start its graph.
    private static let startTimeout: UInt64 = 20_000_000_000
    /// Address space reserved for staging copies (only what is used is backed).
    private static let stagingReserve = 1 << 36

    init(config: QueueGraphConfig, part: ChildPart, launcher: any ChildLauncher) {
        let queue = config.queues[part.queue]
        self.launcher = launcher
        name = queue.name
        options = queue.child
        childQueues = part.members.map { config.queues[$0].name }
        capacity = part.window(in: config)
        let layout = ChannelLayout(capacity: capacity)
        do throws(SharedMemoryError) {
            control = try SharedMemory(name: "qg-channel-\(name)", size: layout.totalBytes, registered: false)
            staging = try SharedMemory(name: "qg-staging-\(name)", size: 0, reserve: Self.stagingReserve, registered: false)
        } catch {
            preconditionFailure("queue '\(queue.name)': cannot make its channel's shared memory: \(error)")
        }
        ChannelLayout.field(.magic, in: control).store(ChannelLayout.magic, ordering: .relaxed)
        ChannelLayout.field(.capacity, in: control).store(UInt32(capacity), ordering: .relaxed)
        sharedWakeEvent = WakeEvent(in: control, at: ChannelLayout.parentEvent, initialize: true)
        childEvent = WakeEvent(in: control, at: ChannelLayout.childEvent, initialize: true)
        down = SharedRing(at: control.base + ChannelLayout.down, capacity: capacity)
        up = SharedRing(at: control.base + layout.up, capacity: 2 * capacity)
        flights = LinkFlights(capacity: capacity)
        stagingSlots = Array(repeating: (0, 0), count: capacity)
        figures = Locked(LinkStatistics(queue: queue.name))
    }

    deinit {
        if pid != 0 { stopChild() }
        lines.deallocate()
    }

    /// The link's queue context, given once by the engine before the graph starts.
    func attach(_ context: ProcessContext) {
        self.context = context
        flights.attach(context)
    }

    // MARK: The child's life

    /// Set in a child's environment (to its queue's name) until it reaches
    /// `ChildProgram.run`: a program that does not hand its child over would
    /// otherwise build the whole graph again and start children of its own.
    static let childEnvironment = "QG_CHILD_QUEUE"

    func threadDidStart(wake: WakeEvent) throws {
        if let parentQueue = getenv(Self.childEnvironment) {
            throw ProcessorError("this program was started as the child of child queue '\(String(cString: parentQueue))' but did not hand the child over to ChildProgram.run (see ChildProgram); it starts no child of its own")
        }
        try startChild()
    }

    func threadWillEnd() {
        if pid != 0 { stopChild() }
    }

    /// Spawns a child on a fresh channel and waits until its graph runs.
    private func startChild() throws {
        generation &+= 1
        down.reset()
        up.reset()
        ChannelLayout.field(.ready, in: control).store(0, ordering: .relaxed)
        ChannelLayout.field(.endOfStream, in: control).store(0, ordering: .relaxed)
        ChannelLayout.field(.finished, in: control).store(0, ordering: .relaxed)
        ChannelLayout.field(.generation, in: control).store(generation, ordering: .sequentiallyConsistent)
        let regions = SharedMemory.live()
        childRegions = Dictionary(uniqueKeysWithValues: regions.map { ($0.id, $0) })
        let channel = ChildChannelSpec(parent: getpid(), control: control.fd, staging: (staging.id, staging.fd, staging.reserved),
                                       regions: regions.map { ($0.id, $0.fd, $0.reserved) })   // the child maps room to grow
        let arguments = [programName(options.executable)] + options.arguments + ["--qg-child", name, channel.encoded]
        let child = try launcher.spawn(options.executable, arguments, environment: "\(Self.childEnvironment)=\(name)",
                                       keeping: [control.fd, staging.fd] + regions.map(\.fd))
        pid = child
        figures.withLock { $0.pid = child; $0.starts += 1 }
        // Only this thread reaps the child, so the pid is still its own here.
        // Without pidfds (before Linux 5.3) the periodic check alone notices its end.
        if case let pidfd = qg_pidfd_open(child), pidfd >= 0 {
            let ended = ManagedAtomic(false)
            watcher = (ended, launcher.startThread(name: "qg-watch-\(child)") { [wake = sharedWakeEvent] in
                _ = qg_wait_ended(pidfd)
                ended.store(true, ordering: .releasing)
                wake.notify()
            }, pidfd)
        }
        let deadline = monotonicNanoseconds() &+ Self.startTimeout
        let ready = ChannelLayout.field(.ready, in: control)
        while ready.load(ordering: .sequentiallyConsistent) != generation {
            if let end = reapChild(block: false) {
                throw ProcessorError("its child \(end.description) before it was ready (\(arguments.joined(separator: " ")))")
            }
            if monotonicNanoseconds() > deadline {
                stopChild()
                throw ProcessorError("its child process \(child) did not start within \(Self.startTimeout / 1_000_000_000) s")
            }
            sharedWakeEvent.wait(timeoutNanoseconds: 10_000_000) { ready.load(ordering: .sequentiallyConsistent) == generation }
        }
        phase = .running
        nextCheck = monotonicNanoseconds() &+ Self.checkInterval
    }

    /// Kills the child and waits for it (a stop, or a child that never got ready).
    private func stopChild() {
        kill(pid, SIGKILL)
        _ = reapChild(block: true)
    }

    /// How the child ended if it has (reaping it), else nil; `clean` when it exited with status 0.
    private func reapChild(block: Bool) -> (description: String, clean: Bool)? {
        var signal: Int32 = 0, code: Int32 = 0
        guard pid != 0, qg_reap(pid, block ? 1 : 0, &signal, &code) == 1 else { return nil }
        let end = "process \(pid) " + (signal != 0 ? "was killed by signal \(signal) (\(signalName(signal)))" : "exited with status \(code)")
        figures.withLock { $0.pid = 0; $0.lastExit = end }
        pid = 0
        endWatcher()   // the child has ended, so its pidfd is readable and the watcher returns
        foldChildStatistics()
        return (end, signal == 0 && code == 0)
    }

    private func endWatcher() {
        guard let watcher else { return }
        pthread_join(watcher.thread, nil)
        close(watcher.pidfd)
        self.watcher = nil
    }

    /// After the child ended: take what it sent before it ended, lose what it
    /// still held, then restart it or stop the graph.
    private func childEnded(_ end: (description: String, clean: Bool)) {
        while let message = up.pop() { flights.handle(message, staged: stagedResult) }
        let expected = phase == .draining && end.clean
        if !expected { figures.withLock { $0.lastDeathDetectedAt = monotonicNanoseconds() } }
        let lost = flights.loseAll()
        if lost > 0 { figures.withLock { $0.lost += lost } }
        if phase == .draining || phase == .ended {
            phase = .ended
            return
        }
        let failure: String
        if options.restart == .always {
            do {
                try startChild()
                return
            } catch {
                failure = "queue '\(name)': its child \(end.description) and could not be restarted: \(error)"
            }
        } else {
            failure = "queue '\(name)': its child \(end.description); restart: never stops the graph (set restart: always to start a new one)"
        }
        phase = .failed
        figures.withLock { $0.failure = failure }
        context.failGraph(failure)
    }

    // MARK: Buffers down

    var acceptsBuffers: Bool {
        switch phase {
        case .running: flights.mayRun
        case .ended, .failed: flights.sendsFlushed
        case .starting, .draining: false
        }
    }

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        let placed = buffer.holderCount == 1 ? placement(of: buffer) : nil
        guard phase == .running, let token = flights.depart(buffer, sender: context.sender, staged: placed == nil) else {
            flights.lose(buffer)
            figures.withLock { $0.lost += 1 }
            return .ok
        }
        var message = LinkMessage(kind: .buffer, token: token)
        message.describe(buffer)
        if let (region, offset) = placed {
            (message.region, message.offset) = (region, UInt64(offset))
            zeroCopy.bump()
        } else {
            guard let offset = stage(buffer, token: Int(token)) else {
                flights.undo(token)
                return .failed
            }
            (message.region, message.offset) = (staging.id, UInt64(offset))
            copied.bump()
        }
        _ = down.push(message)   // the window keeps it from being full
        childEvent.notify()
        return .ok
    }

    /// The buffer's payload as (region, offset) in a region the child maps.
    @inline(__always)
    private func placement(of buffer: Buffer) -> (UInt32, Int)? {
        let payload = buffer.payload
        guard payload.kind == .sharedMemory, let address = payload.baseAddress,
              let region = childRegions[UInt32(truncatingIfNeeded: payload.handle)],
              let offset = region.offset(of: address, count: buffer.size) else { return nil }
        return (region.id, offset)
    }

    /// Copies the payload into token's staging slot (growing it if needed).
    private func stage(_ buffer: Buffer, token: Int) -> Int? {
        let size = buffer.size
        if stagingSlots[token].capacity < size {
            let capacity = (size + 4095) & ~4095
            let end = staging.size
            do throws(SharedMemoryError) {
                try staging.grow(to: end + capacity)
            } catch {
                return nil
            }
            stagingSlots[token] = (end, capacity)
        }
        let offset = stagingSlots[token].offset
        if size > 0 { (staging.base + offset).copyMemory(from: buffer.bytes.baseAddress!, byteCount: size) }
        return offset
    }

    // MARK: Messages up

    func serviceThread() -> Bool {
        var did = flights.take(from: up, staged: stagedResult)
        if phase == .running && context.upstreamEnded {
            // Nothing more will come: let the child finish its stream.
            phase = .draining
            ChannelLayout.field(.endOfStream, in: control).store(1, ordering: .sequentiallyConsistent)
            childEvent.notify()
            did = true
        }
        if pid != 0 && (childHasEnded || (phase == .draining && childFinished) || periodicCheckIsDue()) {
            if let end = reapChild(block: phase == .draining && childFinished && flights.idle) {
                childEnded(end)
                did = true
            } else if childHasEnded {
                endWatcher()   // its wait failed, yet the child runs: the periodic check takes over
            }
        }
        return did
    }

    var hasThreadWork: Bool {
        up.hasMessages || (phase == .running && context.upstreamEnded) || (phase == .draining && childFinished) || childHasEnded
    }

    /// The watcher saw the child end (it is not reaped yet).
    private var childHasEnded: Bool { watcher?.ended.load(ordering: .acquiring) ?? false }

    /// Without a watcher (no pidfds), whether it is time to look at the child again.
    private func periodicCheckIsDue() -> Bool {
        guard watcher == nil else { return false }
        let now = monotonicNanoseconds()
        guard now >= nextCheck else { return false }
        nextCheck = now &+ Self.checkInterval
        return true
    }

    private var childFinished: Bool { ChannelLayout.field(.finished, in: control).load(ordering: .acquiring) != 0 }

    /// Where the child left a staged buffer's result: the token's staging slot.
    private func stagedResult(_ token: Int) -> UnsafeRawPointer { UnsafeRawPointer(staging.base + stagingSlots[token].offset) }

    func endOfStream(context: ProcessContext) {
        // A draining stop reaches here once the child ended and nothing is in
        // flight; an abandoning stop (the child already killed) lets go of the rest.
        if pid != 0 { stopChild() }
        flights.finish(context: context)
    }

    // MARK: Statistics

    /// The link's figures; any thread.
    func statistics() -> LinkStatistics {
        var figures = figures.withLock { $0 }
        (figures.zeroCopy, figures.copied, figures.returned) = (zeroCopy.value, copied.value, flights.returned)
        return figures
    }

    /// Adds the link's figures and the child's queues and thread to a
    /// snapshot of the parent; the link's own row is renamed "NAME (link)".
    func addStatistics(to statistics: inout GraphStatistics) {
        let running = figures.withLock({ $0.pid }) != 0 ? ChannelStatistics.read(queues: childQueues, from: control) : nil   // `pid` is the link thread's
        rows.add(running: running, link: name, to: &statistics)
        statistics.links.append(self.statistics())
    }

    /// Keeps an ended child's last rows.
    private func foldChildStatistics() {
        guard let last = ChannelStatistics.read(queues: childQueues, from: control) else { return }
        rows.fold(last)
        // The next child publishes from zero.
        (control.base + ChannelLayout.stats).storeBytes(of: 0, as: UInt64.self)
    }
}

/// The far side's statistics rows across its lives: the rows of the sides
/// that have ended, summed (what one still had queued counts as abandoned),
/// and the running side's added on reading.
///
/// Threading: any thread.
@_spi(Runtime) public final class PartRows: Sendable {
    private let ended = Locked<(queues: [QueueStatistics], thread: ThreadStatistics?)>(([], nil))

    public init() {}

    /// Keeps the last rows of a far side that has ended.
    public func fold(_ last: (queues: [QueueStatistics], thread: ThreadStatistics)) {
        var last = last
        // What it still held counts as abandoned: its arrivals not popped,
        // dropped or abandoned. Not its `depth`, read apart from the counters:
        // a side killed mid-push published a depth that counts a buffer its
        // `arrived` did not yet.
        for i in last.queues.indices {
            let q = last.queues[i]
            last.queues[i].abandoned += max(0, q.arrived - q.popped - q.queueDrops - q.abandoned)
            last.queues[i].depth = 0
        }
        ended.withLock { $0 = Self.sum($0, last) }
    }

    /// Adds the rows (the ended sides' and `running`'s) and their thread to a
    /// snapshot; renames the link's own row "LINK (link)".
    public func add(running: (queues: [QueueStatistics], thread: ThreadStatistics)?, link: String, to statistics: inout GraphStatistics) {
        let thread = statistics.threads.count
        if let i = statistics.queues.firstIndex(where: { $0.name == link }) { statistics.queues[i].name = "\(link) (link)" }
        var (rows, threadRow) = ended.withLock { $0 }
        if let running { (rows, threadRow) = Self.sum((rows, threadRow), running) }
        statistics.queues += rows.map { var row = $0; row.thread = thread; return row }
        if var threadRow {
            threadRow.group = thread
            statistics.threads.append(threadRow)
        }
    }

    /// Two sides' rows (the first may have none yet), summed.
    private static func sum(_ a: (queues: [QueueStatistics], thread: ThreadStatistics?),
                            _ b: (queues: [QueueStatistics], thread: ThreadStatistics)) -> (queues: [QueueStatistics], thread: ThreadStatistics?) {
        (a.queues.isEmpty ? b.queues : zip(a.queues, b.queues).map { $0.adding($1) }, a.thread.map { $0.adding(b.thread) } ?? b.thread)
    }
}

extension QueueStatistics {
    /// Two children's rows for one queue, summed.
    func adding(_ other: QueueStatistics) -> QueueStatistics {
        var sum = self
        sum.arrived += other.arrived
        sum.popped += other.popped
        sum.dropped.merge(other.dropped, uniquingKeysWith: +)
        sum.acks += other.acks
        sum.naks += other.naks
        sum.abandoned += other.abandoned
        sum.depth += other.depth
        sum.maxDepth = max(maxDepth, other.maxDepth)
        sum.bytesPopped += other.bytesPopped
        return sum
    }
}

extension ThreadStatistics {
    func adding(_ other: ThreadStatistics) -> ThreadStatistics {
        var sum = self
        sum.invocations += other.invocations
        sum.busyNanoseconds += other.busyNanoseconds
        sum.idleNanoseconds += other.idleNanoseconds
        sum.wakeups += other.wakeups
        return sum
    }
}

/// What a child needs to find its channel: the parent's pid, the control
/// region's fd, the staging region and every payload region (id, fd, bytes
/// to map), as one command-line word:
/// `PPID,CONTROLFD,ID:FD:BYTES,ID:FD:BYTES…` (staging first).
struct ChildChannelSpec {
    var parent: Int32
    var control: Int32
    var staging: (id: UInt32, fd: Int32, bytes: Int)
    var regions: [(id: UInt32, fd: Int32, bytes: Int)]

    var encoded: String {
        ([String(parent), String(control)] + ([staging] + regions).map { "\($0.id):\($0.fd):\($0.bytes)" }).joined(separator: ",")
    }

    init(parent: Int32, control: Int32, staging: (UInt32, Int32, Int), regions: [(UInt32, Int32, Int)]) {
        (self.parent, self.control, self.staging, self.regions) = (parent, control, staging, regions)
    }

    init?(_ text: String) {
        let words = text.split(separator: ",")
        guard words.count >= 3, let parent = Int32(words[0]), let control = Int32(words[1]) else { return nil }
        var regions: [(UInt32, Int32, Int)] = []
        for word in words.dropFirst(2) {
            let parts = word.split(separator: ":")
            guard parts.count == 3, let id = UInt32(parts[0]), let fd = Int32(parts[1]), let bytes = Int(parts[2]) else { return nil }
            regions.append((id, fd, bytes))
        }
        self.init(parent: parent, control: control, staging: regions[0], regions: Array(regions.dropFirst()))
    }
}

/// The name `ps` shows for a program: `/proc/self/exe` resolved.
private func programName(_ path: String) -> String {
    guard path == "/proc/self/exe" else { return path }
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    return n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : path
}

/// "KILL" for 9, as `kill -l` names it.
func signalName(_ signal: Int32) -> String {
    let names = [1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 6: "ABRT", 7: "BUS", 8: "FPE", 9: "KILL", 11: "SEGV", 13: "PIPE", 15: "TERM"]
    return names[Int(signal)] ?? "SIG\(signal)"
}
