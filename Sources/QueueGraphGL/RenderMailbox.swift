#if canImport(Glibc)
import Glibc
#endif
import CQueueGraphTrace
import QueueGraphCore
import Synchronization

/// An RGBA image in CPU memory (rows top to bottom, R in the lowest byte of
/// each `UInt32`): an input frame for the GL owner, or a frame read back
/// from it.
///
/// Threading: a value; any thread.
public struct CPUImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt32]

    public init(width: Int, height: Int, pixels: [UInt32]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height, "a \(width)×\(height) image needs \(width * height) pixels")
        (self.width, self.height, self.pixels) = (width, height, pixels)
    }
}

/// How much of the GL owner's render state a reset request clears.
/// Pending resets merge to the strongest scope.
///
/// Threading: a value; any thread.
public enum ResetScope: Int, Sendable, Comparable, CaseIterable {
    /// Forget the external input image (shaders see black on `iChannel1`) and restart `iFrame` at 0.
    case inputs
    /// The above, and forget each pass's history of input frames (`iHistory` black again).
    case temporalHistory
    /// The above, and forget each pass's own previous output (`iChannel2` black again).
    case shaderFeedback
    /// The above, and reload and recompile every shader pass from its file
    /// (a pass whose new source fails keeps its old program; the request fails with the log).
    case shaders

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// A command for the GL owner thread, sent from any thread.
///
/// Threading: a value; any thread.
public enum RenderCommand: Sendable, Equatable {
    /// Upload an input image (it becomes `iChannel1` of the shader passes). Latest value wins.
    case upload(CPUImage)
    /// Show the latest rendered image (or `image`, a frame's `gpuImage`) in the preview window. Latest value wins; best effort.
    case present(image: UInt64?)
    /// Write the latest rendered image (or `image`) to a PNG file. Latest value wins.
    case screenshot(path: String, image: UInt64?)
    /// Read back the latest rendered image. FIFO: never coalesced.
    case output
    /// Reset render state. Pending resets merge to the strongest scope.
    case reset(ResetScope)

    /// The command's kind (its mailbox slot).
    public var kind: RenderCommandKind {
        switch self {
        case .upload: .upload
        case .present: .present
        case .screenshot: .screenshot
        case .output: .output
        case .reset: .reset
        }
    }
}

/// The kinds of render command, in the order the owner thread serves them:
/// resets first (they change what the others see), preview last (best effort).
///
/// Threading: a value; any thread.
public enum RenderCommandKind: Int, Sendable, CaseIterable {
    case reset, upload, output, screenshot, present
}

/// Why a render request did not complete.
///
/// Threading: a value; any thread.
public enum RenderFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The owner thread had not started it by its timeout.
    case timedOut
    /// A newer request of the same slot replaced it before it ran (coalesced).
    case superseded
    /// The owner thread had stopped (or was stopping) and did not run it.
    case stopped
    /// It ran and failed (a shader did not compile, a file could not be written).
    case error(String)
    /// An `output` request dropped, the oldest, when a newer one found the output FIFO at its capacity.
    case overflowed
    /// A preview `present` skipped because output requests were under pressure.
    case skipped
    /// The GL thread waited on a request it posted itself: it cannot run it
    /// while it waits, so the wait is refused at once (the request stays
    /// queued and runs when the thread next serves its mailbox).
    case selfWait

    public var description: String {
        switch self {
        case .timedOut: "timed out before the GL thread started it"
        case .superseded: "superseded by a newer request"
        case .stopped: "the GL thread has stopped"
        case .error(let message): message
        case .overflowed: "dropped from the full output FIFO for a newer request"
        case .skipped: "preview skipped: output requests were under pressure"
        case .selfWait: "the GL thread cannot wait on a request it posted itself (it would wait out the timeout): refused"
        }
    }
}

/// The end of a render request: exactly one per request.
///
/// Threading: a value; any thread.
public enum RenderOutcome: Sendable, Equatable {
    /// It ran; `image` is the read-back image of an `output` request.
    case completed(image: CPUImage?)
    case failed(RenderFailure)
}

/// A request posted to a `RenderMailbox`: wait on it for its outcome.
///
/// Threading: any thread.
public final class RenderRequest: Sendable {
    public let command: RenderCommand
    /// Monotonic nanoseconds when it was posted, and by when it must have started.
    public let postedAt: UInt64
    public let deadline: UInt64
    /// The outcome once there is one, and when the owner took it (0: not yet).
    private let state = Locked<(outcome: RenderOutcome?, startedAt: UInt64)>((nil, 0))
    private let event = WakeEvent()
    private let traceID: UInt32

    init(_ command: RenderCommand, postedAt: UInt64, deadline: UInt64, traceID: UInt32) {
        (self.command, self.postedAt, self.deadline, self.traceID) = (command, postedAt, deadline, traceID)
    }

    /// The outcome, once there is one.
    public var outcome: RenderOutcome? { state.withLock { $0.outcome } }

    /// Sets the outcome unless there is one (and traces `gl_request` with
    /// the mailbox's `depth`); returns whether it did. `settled` runs only
    /// when it did, before any waiter wakes.
    @discardableResult
    func finish(_ outcome: RenderOutcome, depth: Int, settled: () -> Void = {}) -> Bool {
        let set = state.withLock { state -> Bool in
            guard state.outcome == nil else { return false }
            state.outcome = outcome
            return true
        }
        guard set else { return false }
        settled()
        event.notify()
        if qg_trace_on(QG_TP_GL_REQUEST) != 0 {
            let code: UInt8 = switch outcome {
            case .completed: 0
            case .failed(.error): 1
            case .failed(.superseded): 2
            case .failed(.timedOut): 3
            case .failed(.stopped): 4
            case .failed(.overflowed): 5
            case .failed(.skipped): 6
            case .failed(.selfWait): 1   // never a request's outcome
            }
            qg_tp_gl_request(traceID, UInt8(command.kind.rawValue), code, monotonicNanoseconds() &- postedAt, UInt32(max(0, depth)))
        }
        return true
    }

    func markStarted() {
        let now = monotonicNanoseconds()
        state.withLock { $0.startedAt = now }
    }
    var hasStarted: Bool { startedAt != 0 }
    /// Monotonic nanoseconds when the owner took it (0: not yet).
    var startedAt: UInt64 { state.withLock { $0.startedAt } }

    /// Sleeps until the outcome is known or `until` (monotonic ns) passes.
    func sleep(until: UInt64) {
        let now = monotonicNanoseconds()
        guard now < until else { return }
        event.wait(timeoutNanoseconds: Int64(min(until - now, 100_000_000))) { outcome != nil }
    }
}

/// Counters of a `RenderMailbox`, per command kind; they balance:
/// `enqueued = executed + coalesced + timedOut + dropped + overflowed + skipped + pending`.
///
/// Threading: a value; any thread.
public struct MailboxCounts: Sendable, Equatable {
    public var enqueued = 0
    /// Run by the owner thread, successfully or not.
    public var executed = 0
    /// Of `executed`, those that failed while running.
    public var failed = 0
    /// Replaced by a newer request of the same slot (or merged into a newer reset).
    public var coalesced = 0
    public var timedOut = 0
    /// Refused or discarded because the owner thread stopped.
    public var dropped = 0
    /// `output` requests dropped from the full FIFO (the oldest, for a newer one).
    public var overflowed = 0
    /// `present` requests skipped because outputs were under pressure.
    public var skipped = 0
    public var pending = 0
    /// Of `executed`, those that ran longer than the mailbox's budget (logged).
    public var overBudget = 0
    /// Nanoseconds from post to outcome of the executed ones: sum and maximum.
    public var latencySum: UInt64 = 0
    public var latencyMax: UInt64 = 0

    public var balances: Bool { enqueued == executed + coalesced + timedOut + dropped + overflowed + skipped + pending }

    static func + (a: Self, b: Self) -> Self {
        var s = a
        s.enqueued += b.enqueued; s.executed += b.executed; s.failed += b.failed
        s.coalesced += b.coalesced; s.timedOut += b.timedOut; s.dropped += b.dropped; s.pending += b.pending
        s.overflowed += b.overflowed; s.skipped += b.skipped; s.overBudget += b.overBudget
        s.latencySum += b.latencySum; s.latencyMax = max(a.latencyMax, b.latencyMax)
        return s
    }
}

/// A snapshot of a `RenderMailbox`'s telemetry.
///
/// Threading: a value; any thread.
public struct MailboxStatistics: Sendable, Equatable {
    /// Per kind, indexed by `RenderCommandKind.rawValue`.
    public var byKind: [MailboxCounts]
    /// Requests waiting now, and the most there ever were.
    public var depth: Int
    public var maxDepth: Int
    /// How often the owner thread found work, by the kinds it found (a wake
    /// with a reset and an upload counts once for each).
    public var wakeReasons: [Int]
    /// Waits the owner thread tried on its own requests, refused (`RenderFailure.selfWait`).
    public var selfWaits = 0

    public subscript(kind: RenderCommandKind) -> MailboxCounts { byKind[kind.rawValue] }
    public var total: MailboxCounts { byKind.reduce(MailboxCounts(), +) }

    /// The seed's input counters.
    public var inputsAccepted: Int { self[.upload].enqueued }
    public var inputsReplaced: Int { self[.upload].coalesced }
    public var inputsDropped: Int { self[.upload].timedOut + self[.upload].dropped }
    /// Preview presents that never ran (a newer one replaced them, outputs
    /// were under pressure, or they timed out).
    public var previewSkips: Int { self[.present].coalesced + self[.present].skipped + self[.present].timedOut + self[.present].dropped }
    public var screenshotsWritten: Int { self[.screenshot].executed - self[.screenshot].failed }
    public var screenshotsFailed: Int { self[.screenshot].failed }
}

/// The GL owner thread's mailbox (the seed's `RenderCommandQueue`): other
/// threads post commands; the owner thread takes them between its frames.
///
/// Rules: `upload`, `present` and `screenshot` are latest-value slots (a
/// newer request supersedes the pending one of the same slot, counted as
/// coalesced; the slots are separate, so a preview never replaces a
/// screenshot); `output` requests are FIFO and never coalesced, up to
/// `outputCapacity` pending: a newer one then drops the oldest (counted as
/// `overflowed`: for live output the newest frame matters most); pending
/// resets merge into one with the strongest scope. A preview is skipped
/// (counted) when outputs are under pressure: two or more pending, or one
/// that waited past half its timeout. A request that runs longer than
/// `budgetNanoseconds` is logged and counted (`overBudget`). The owner
/// thread may not wait on a request it posted itself: the wait is refused
/// at once (`selfWait`). Every request has a
/// timeout: one the owner has not started by then fails as `timedOut`
/// (whether its poster waits on it or not), and every request ends in
/// exactly one outcome. `close` (the owner stops) lets the owner drain what
/// is pending; later posts fail as `stopped`.
///
/// Threading: `post`, `wait`, `statistics` from any thread; `take` and
/// `close` from the owner thread only; `complete` from the owner thread or
/// a helper finishing a request the owner took (the screenshot writer).
public final class RenderMailbox: Sendable {
    private struct State {
        var slots: [RenderRequest?] = Array(repeating: nil, count: RenderCommandKind.allCases.count)
        var outputs: [RenderRequest] = []
        var counts = Array(repeating: MailboxCounts(), count: RenderCommandKind.allCases.count)
        var wakeReasons = Array(repeating: 0, count: RenderCommandKind.allCases.count)
        var maxDepth = 0
        var closed = false
        var selfWaits = 0
        /// The kinds whose over-budget run was logged already (once each).
        var loggedOverBudget: Set<Int> = []

        var depth: Int { slots.count { $0 != nil } + outputs.count }
    }

    private let state = Locked(State())
    /// Woken on every post (the owner thread sleeps on it).
    private let wake: @Sendable () -> Void
    /// Requests waiting (read without the lock by the owner's idle check).
    private let pendingCount = Atomic<Int>(0)
    /// Timeout of a request posted without one.
    public let defaultTimeoutNanoseconds: UInt64
    /// Names the mailbox's owner in `gl_request` events.
    public let traceID: UInt32
    /// The most `output` requests pending at once.
    public let outputCapacity: Int
    /// How long a request may run before it is logged as over budget.
    public let budgetNanoseconds: UInt64
    /// The owner thread (`pthread_self` as a number; 0: none yet).
    private let ownerThread = Atomic<UInt>(0)

    public init(defaultTimeoutNanoseconds: UInt64 = 1_000_000_000, outputCapacity: Int = 8, budgetNanoseconds: UInt64 = 100_000_000,
                traceID: UInt32 = 0, wake: @escaping @Sendable () -> Void = {}) {
        precondition(outputCapacity > 0, "the output FIFO needs room for one request")
        self.defaultTimeoutNanoseconds = defaultTimeoutNanoseconds
        (self.outputCapacity, self.budgetNanoseconds) = (outputCapacity, budgetNanoseconds)
        self.traceID = traceID
        self.wake = wake
    }

    /// Owner thread, as it starts: the thread whose waits on its own requests are refused.
    public func bindOwnerThread() { ownerThread.store(UInt(pthread_self()), ordering: .releasing) }   // pthread_t is a number on Linux

    private var depth: Int { pendingCount.load(ordering: .relaxed) }

    /// Posts a command; returns its request (wait on it with `wait`).
    @discardableResult
    public func post(_ command: RenderCommand, timeoutNanoseconds: UInt64? = nil) -> RenderRequest {
        let now = monotonicNanoseconds()
        let deadline = now &+ (timeoutNanoseconds ?? defaultTimeoutNanoseconds)
        let k = command.kind.rawValue
        let (request, superseded, accepted) = state.withLock { s -> (RenderRequest, RenderRequest?, Bool) in
            s.counts[k].enqueued += 1
            var command = command
            if case .reset(let scope) = command, case .reset(let pendingScope)? = s.slots[k]?.command {
                command = .reset(max(scope, pendingScope))   // merged: the strongest scope wins
            }
            let request = RenderRequest(command, postedAt: now, deadline: deadline, traceID: traceID)
            guard !s.closed else {
                s.counts[k].dropped += 1
                return (request, nil, false)
            }
            var superseded: RenderRequest?
            if command.kind == .output {
                if s.outputs.count >= outputCapacity {   // the oldest goes
                    superseded = s.outputs.removeFirst()
                    s.counts[k].overflowed += 1
                    s.counts[k].pending -= 1
                }
                s.outputs.append(request)
                s.counts[k].pending += 1
            } else {
                superseded = s.slots[k]
                s.slots[k] = request
                if superseded == nil { s.counts[k].pending += 1 } else { s.counts[k].coalesced += 1 }
            }
            s.maxDepth = max(s.maxDepth, s.depth)
            pendingCount.store(s.depth, ordering: .releasing)
            return (request, superseded, true)
        }
        superseded?.finish(.failed(command.kind == .output ? .overflowed : .superseded), depth: depth)
        if accepted { wake() } else { request.finish(.failed(.stopped), depth: depth) }
        return request
    }

    /// Waits for `request`'s outcome. When its timeout passes before the
    /// owner thread has started it, it fails as `timedOut`; once started, it
    /// waits for the owner to finish it (or for `overrun` more nanoseconds,
    /// returning nil: the request is still running).
    public func wait(_ request: RenderRequest, overrunNanoseconds: UInt64 = 5_000_000_000) -> RenderOutcome? {
        let owner = ownerThread.load(ordering: .acquiring)
        if request.outcome == nil && owner != 0 && owner == UInt(pthread_self()) {
            state.withLock { $0.selfWaits += 1 }
            qgLog("GL mailbox \(traceID): the GL thread waited on its own \(request.command.kind) request; refused (\(RenderFailure.selfWait))")
            return .failed(.selfWait)
        }
        while request.outcome == nil {
            let now = monotonicNanoseconds()
            if now >= request.deadline {
                expire(now: now)
                if request.hasStarted {
                    let limit = request.deadline &+ overrunNanoseconds
                    while request.outcome == nil && monotonicNanoseconds() < limit { request.sleep(until: limit) }
                    return request.outcome
                }
            } else {
                request.sleep(until: request.deadline)
            }
        }
        return request.outcome
    }

    /// Fails every pending request whose timeout has passed. Any thread.
    public func expire(now: UInt64 = monotonicNanoseconds()) {
        let expired = state.withLock { s -> [RenderRequest] in
            var expired: [RenderRequest] = []
            for i in s.slots.indices {
                if let r = s.slots[i], r.deadline <= now {
                    expired.append(r)
                    s.slots[i] = nil
                    s.counts[i].timedOut += 1
                    s.counts[i].pending -= 1
                }
            }
            let overdue = s.outputs.filter { $0.deadline <= now }
            if !overdue.isEmpty {
                s.outputs.removeAll { $0.deadline <= now }
                s.counts[RenderCommandKind.output.rawValue].timedOut += overdue.count
                s.counts[RenderCommandKind.output.rawValue].pending -= overdue.count
                expired += overdue
            }
            pendingCount.store(s.depth, ordering: .releasing)
            return expired
        }
        for request in expired { request.finish(.failed(.timedOut), depth: depth) }
    }

    /// Whether requests wait (cheap; for the owner's idle check). Any thread.
    public var hasPending: Bool { pendingCount.load(ordering: .acquiring) > 0 }

    /// Owner thread: takes every pending request, in serving order (reset,
    /// upload, the outputs in FIFO order, screenshot, present), after failing
    /// the overdue ones, and counts the wake's reasons. Each taken request
    /// is marked started; finish each with `complete`.
    public func take(now: UInt64 = monotonicNanoseconds()) -> [RenderRequest] {
        expire(now: now)
        let (taken, kinds, skipped) = state.withLock { s -> ([RenderRequest], UInt8, RenderRequest?) in
            // Outputs under pressure: the preview waits for a calmer wake.
            let pressed = s.outputs.count >= 2 || s.outputs.contains { now &- $0.postedAt > ($0.deadline &- $0.postedAt) / 2 }
            var skipped: RenderRequest?
            let present = RenderCommandKind.present.rawValue
            if pressed, let request = s.slots[present] {
                (skipped, s.slots[present]) = (request, nil)
                s.counts[present].skipped += 1
                s.counts[present].pending -= 1
            }
            var taken: [RenderRequest] = []
            var kinds: UInt8 = 0   // a bit per kind found: the wake's reasons
            for kind in RenderCommandKind.allCases {
                let before = taken.count
                if kind == .output {
                    taken += s.outputs
                    s.outputs.removeAll()
                } else if let r = s.slots[kind.rawValue] {
                    taken.append(r)
                    s.slots[kind.rawValue] = nil
                }
                if taken.count > before {
                    s.wakeReasons[kind.rawValue] += 1
                    kinds |= 1 << UInt8(kind.rawValue)
                }
            }
            pendingCount.store(0, ordering: .releasing)
            return (taken, kinds, skipped)
        }
        skipped?.finish(.failed(.skipped), depth: depth)
        for request in taken { request.markStarted() }
        if !taken.isEmpty && qg_trace_on(QG_TP_GL_WAKE) != 0 { qg_tp_gl_wake(traceID, kinds, UInt32(taken.count)) }
        return taken
    }

    /// Ends a taken request with what running it gave (the owner thread, or
    /// the helper it handed the rest of the work to).
    public func complete(_ request: RenderRequest, _ result: Result<CPUImage?, RenderFailure>) {
        let now = monotonicNanoseconds()
        let latency = now &- request.postedAt
        let k = request.command.kind.rawValue
        let started = request.startedAt
        let overBudget = started != 0 && now &- started > budgetNanoseconds
        var firstOverBudget = false
        let outcome: RenderOutcome = switch result {
        case .success(let image): .completed(image: image)
        case .failure(let failure): .failed(failure)
        }
        // Counted only by the outcome that sticks (a second completion is refused), before waiters wake.
        request.finish(outcome, depth: depth) {
            state.withLock { s in
                s.counts[k].pending -= 1
                s.counts[k].executed += 1
                if case .failure = result { s.counts[k].failed += 1 }
                s.counts[k].latencySum &+= latency
                s.counts[k].latencyMax = max(s.counts[k].latencyMax, latency)
                if overBudget {
                    s.counts[k].overBudget += 1
                    firstOverBudget = s.loggedOverBudget.insert(k).inserted
                }
            }
        }
        if firstOverBudget {
            qgLog("GL mailbox \(traceID): a \(request.command.kind) request ran \((now &- started) / 1_000_000) ms, over its budget of \(budgetNanoseconds / 1_000_000) ms (counted as overBudget; logged once per kind)")
        }
    }

    /// Owner thread, as it stops: refuses later posts and returns what is
    /// still pending for a last drain (run them, then `complete` each).
    public func close() -> [RenderRequest] {
        state.withLock { $0.closed = true }
        return take()
    }

    public func statistics() -> MailboxStatistics {
        state.withLock { s in
            MailboxStatistics(byKind: s.counts, depth: s.depth, maxDepth: s.maxDepth, wakeReasons: s.wakeReasons, selfWaits: s.selfWaits)
        }
    }
}
