#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import HeapModule
import QueueGraphCore
import QueueGraphRuntime
import Synchronization

/// A `pull` queue's processor (Lumiera's frame jobs, beside the push
/// graph): each frame job that arrives becomes a job that pulls a
/// `RenderNetwork`'s exit node for that frame, on a pool of `workers`
/// threads, each with its own instance of the network. The job renders
/// into the frame buffer that arrived (the output slot).
///
/// The pool runs jobs in order of their start time: the frame's deadline
/// less the time a job takes (a moving average of the last ones), so the
/// job that must start first runs first. A job still waiting when its
/// deadline passes is discarded: the frame is dropped as `late` (traced as
/// `frame_deadline_miss`), never rendered late. Frames go on in the order
/// they arrived, each once its job is done; a job that throws fails its
/// frame (`failureReason` keeps the first error).
///
/// Threading: as `BufferProcessor`, on its queue's thread; the workers
/// start with that thread and end with it. Finished jobs are sent on
/// between invocations (`serviceThread`), woken by the workers.
public final class PullNode: ThreadLifecycle, FailureReporting, @unchecked Sendable {
    public let workers: Int
    private let makeNetwork: @Sendable () throws(NetworkRefusal) -> RenderNetwork
    private var networks: [RenderNetwork] = []
    private var pool: JobPool?
    /// Jobs in the order their frames arrived.
    private var inFlight = Deque<PulledJob>()
    /// Finished jobs, to reuse (no allocation per frame).
    private var spare: [PulledJob] = []
    public private(set) var failureReason: String?
    private let counts = Locked(PullStatistics())
    /// The queue's context, for sending jobs on between invocations (the same thread).
    private unowned(unsafe) var context: ProcessContext?

    /// `makeNetwork` makes one instance of the network per worker, when the queue's thread starts.
    public init(workers: Int, makeNetwork: @escaping @Sendable () throws(NetworkRefusal) -> RenderNetwork) {
        precondition(workers > 0, "a pull queue needs at least one worker")
        self.workers = workers
        self.makeNetwork = makeNetwork
    }

    /// Jobs run, discarded past their deadline, and failed so far.
    public var statistics: PullStatistics { counts.withLock { $0 } }

    public func threadDidStart(wake: WakeEvent) throws {
        networks = try (0..<workers).map { _ throws(NetworkRefusal) in try makeNetwork() }
        for network in networks { try network.prepare() }
        pool = JobPool(networks: networks, wake: wake)
    }

    public func threadWillEnd() {
        pool?.stop()
        pool = nil
    }

    /// A finished job at the front, which can go now (a rendered frame needs room downstream).
    public var hasThreadWork: Bool {
        guard let job = inFlight.first, job.isDone, let context else { return false }
        if case .rendered = job.outcome { return context.hasRoom(0) }
        return true
    }

    public var holdsBuffersToSend: Bool { !inFlight.isEmpty }

    /// Between invocations: sends on the jobs the workers finished.
    public func serviceThread() -> Bool {
        guard hasThreadWork, let context else { return false }
        sendFinished(context)
        return true
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let pool, let frame = Frame(buffer), frame.pixelFormat == .rgba else {
            if failureReason == nil { failureReason = "a pull queue takes RGBA frames" }
            return .failed
        }
        self.context = context
        let job = spare.popLast() ?? PulledJob()
        job.prepare(buffer, frame: frame)
        inFlight.append(job)
        pool.submit(job)
        sendFinished(context)
        return .ok
    }

    /// The queue ends once it holds no job (`holdsBuffersToSend`), so at a
    /// stream's end every frame has gone on. When the graph is stopped,
    /// what has not (never run, or no room downstream) is dropped as `closed`.
    public func endOfStream(context: ProcessContext) {
        pool?.waitUntilIdle()
        sendFinished(context)
        for job in inFlight { context.dropBuffer(job.buffer!, reason: .closed) }
        inFlight.removeAll()
        for network in networks { network.finish() }
    }

    /// Sends on the finished jobs at the front, in arrival order, while
    /// there is room downstream (the thread is woken when room is made).
    private func sendFinished(_ context: ProcessContext) {
        let held = inFlight.count
        defer { if held > 0 && inFlight.isEmpty { context.reconsider() } }   // it may end now
        while let job = inFlight.first, job.isDone {
            let buffer = job.buffer!
            if case .rendered = job.outcome {
                guard context.outPadCount == 0 || context.sendTo(0, buffer) != .full else { return }
            }
            inFlight.removeFirst()
            switch job.outcome {
            case .rendered:
                context.traceFrameStart(job.tick, slackNanoseconds: Int64(clamping: job.deadline &- job.started))
                context.traceFrameEnd(job.tick, workNanoseconds: job.work)
                counts.withLock { $0.run += 1 }
                if context.outPadCount == 0 { context.doneBuffer(buffer) }
            case .late:
                context.traceDeadlineMiss(job.tick, lateNanoseconds: job.started - job.deadline)
                counts.withLock { $0.discarded += 1 }
                context.dropBuffer(buffer, reason: .late)
            case .failed(let reason):
                if failureReason == nil { failureReason = reason }
                counts.withLock { $0.failed += 1 }
                context.dropBuffer(buffer, reason: .failed)
            }
            job.buffer = nil
            spare.append(job)
        }
    }
}

/// A pull queue's counters.
///
/// Threading: a value; any thread.
public struct PullStatistics: Sendable, Equatable {
    /// Jobs that rendered their frame.
    public var run = 0
    /// Jobs discarded because their deadline passed before they started.
    public var discarded = 0
    /// Jobs whose network threw.
    public var failed = 0
}

/// One frame's job: written by the queue's thread before it is submitted,
/// then by the worker that runs it, until `isDone`.
final class PulledJob: @unchecked Sendable {
    enum Outcome { case rendered, late, failed(String) }

    var buffer: Buffer?
    private(set) var tick: Int64 = 0
    private(set) var deadline: UInt64 = 0
    var outcome = Outcome.rendered
    /// When a worker took it, and how long the network took.
    var started: UInt64 = 0
    var work: UInt64 = 0
    private let done = Atomic<Bool>(false)

    var isDone: Bool { done.load(ordering: .acquiring) }

    func prepare(_ buffer: Buffer, frame: Frame) {
        self.buffer = buffer
        (tick, deadline) = (frame.job.tick, frame.job.deadline)
        done.store(false, ordering: .relaxed)
    }

    func finish(_ outcome: Outcome) {
        self.outcome = outcome
        done.store(true, ordering: .releasing)
    }
}

/// The workers of a pull queue, one per network instance, taking jobs by
/// start time from a heap.
///
/// Threading: `submit`, `waitUntilIdle` and `stop` from the queue's thread.
final class JobPool: @unchecked Sendable {
    private struct Entry: Comparable {
        let start: UInt64
        let order: UInt64
        let job: PulledJob

        static func < (a: Entry, b: Entry) -> Bool { (a.start, a.order) < (b.start, b.order) }
        static func == (a: Entry, b: Entry) -> Bool { a.order == b.order }
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var heap = Heap<Entry>()
    private var running = 0
    private var submitted: UInt64 = 0
    private var stopping = false
    /// A job's expected time, a moving average of the last ones (nanoseconds).
    private var estimate: UInt64 = 0
    private var threads: [pthread_t] = []
    private let wake: WakeEvent

    init(networks: [RenderNetwork], wake: WakeEvent) {
        self.wake = wake
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        threads = networks.enumerated().map { i, network in
            nonisolated(unsafe) let network = network
            return spawnThread(name: "pull-w\(i)") { [self] in serve(network) }
        }
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    /// Queues `job`, to start by its deadline less the expected time.
    func submit(_ job: PulledJob) {
        pthread_mutex_lock(mutex)
        let start = job.deadline > estimate ? job.deadline - estimate : 0
        heap.insert(Entry(start: start, order: submitted, job: job))
        submitted += 1
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Returns when no job is queued or running.
    func waitUntilIdle() {
        pthread_mutex_lock(mutex)
        while (!heap.isEmpty && !stopping) || running > 0 { pthread_cond_wait(changed, mutex) }
        pthread_mutex_unlock(mutex)
    }

    /// Ends and joins the workers once their running jobs are done; queued jobs stay unrun.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(changed)
        let joining = threads
        threads = []
        pthread_mutex_unlock(mutex)
        for thread in joining { pthread_join(thread, nil) }
    }

    private func serve(_ network: RenderNetwork) {
        pthread_mutex_lock(mutex)
        while true {
            while heap.isEmpty && !stopping { pthread_cond_wait(changed, mutex) }
            if stopping { break }
            let job = heap.removeMin().job
            running += 1
            pthread_mutex_unlock(mutex)
            let took = run(job, on: network)
            pthread_mutex_lock(mutex)
            if let took { estimate = estimate == 0 ? took : (estimate * 7 + took) / 8 }
            running -= 1
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Runs one job (or discards it past its deadline); returns the network's time when it ran.
    private func run(_ job: PulledJob, on network: RenderNetwork) -> UInt64? {
        let started = monotonicNanoseconds()
        job.started = started
        defer { wake.notify() }
        guard started < job.deadline else {
            job.finish(.late)
            return nil
        }
        let outcome: PulledJob.Outcome
        do {
            try network.render(Frame(job.buffer!)!)
            outcome = .rendered
        } catch {
            outcome = .failed("\(error)")
        }
        job.work = monotonicNanoseconds() - started
        job.finish(outcome)
        return job.work
    }
}

extension PullNode: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] { try rgbaFrames(arriving) }
}
