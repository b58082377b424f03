import CQueueGraph
@_spi(Runtime) import QueueGraphCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Flags every scheduler thread of a graph watches.
final class ThreadControl: Sendable {
    let paused = Atomic<Bool>(false)
    let stopping = Atomic<Bool>(false)
    /// Threads still running, and how many of them are parked by a pause;
    /// `changed` is notified as either changes.
    let running = Atomic<Int>(0)
    let parked = Atomic<Int>(0)
    let changed = WakeEvent()
    /// Threads that have started their `ThreadLifecycle` hooks; they run
    /// nothing until `go` (every thread started) or `stopping` (one failed).
    let started = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
    let startFailure = Locked<QueueGraphError?>(nil)
}

/// The thread that runs one scheduler group: it runs invocations while there
/// is work, spins briefly when there is none, then sleeps until a queue of
/// its group gains a buffer, a full downstream queue gains room, a pool gets
/// a buffer back, a waiting source's time comes, or the graph changes state.
///
/// Threading: created and joined by `QueueGraph`; the loop runs on its own thread.
final class SchedulerThread: @unchecked Sendable {
    private let engine: GraphEngine
    private let group: Int
    private let control: ThreadControl
    private var thread: pthread_t?

    /// Longest sleep before re-checking everything (a safety net, not a poll).
    private static let maxSleepNanoseconds: UInt64 = 50_000_000
    private static let spinRounds = 64
    /// After spinning, how long to keep polling with `sched_yield` (which
    /// gives the core to any other runnable thread) before sleeping. Waking a
    /// sleeping thread costs its waker a system call and, in a VM, an
    /// inter-processor interrupt: microseconds, the price of dozens of buffers.
    private static let yieldNanoseconds: UInt64 = 20_000

    init(engine: GraphEngine, group: Int, control: ThreadControl) {
        self.engine = engine
        self.group = group
        self.control = control
    }

    func start() {
        thread = spawnThread(name: "qg-\(group)") { [self] in loop() }
    }

    func join() {
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func loop() {
        let scheduler = engine.scheduler(group)
        var busySince = monotonicNanoseconds()
        engine.recordIdle(group: group, nanoseconds: 0, woke: false, resumedAt: busySince)
        engine.traceThreadBegin(group: group)
        defer {
            engine.traceThreadEnd()
            engine.recordBusy(group: group, nanoseconds: Int(monotonicNanoseconds() &- busySince))
            control.running.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            control.changed.notify()
        }
        let lifecycles = scheduler.lifecycles
        let hooks = lifecycles.map(\.hook)
        var hooksStarted = 0
        defer { for hook in hooks[..<hooksStarted].reversed() { hook.threadWillEnd() } }
        guard startHooks(lifecycles, wake: scheduler.event, started: &hooksStarted) else { return }
        var idleRounds = 0
        var idleSince: UInt64 = 0
        while !control.stopping.load(ordering: .relaxed) {
            if control.paused.load(ordering: .relaxed) {
                let start = monotonicNanoseconds()
                engine.recordBusy(group: group, nanoseconds: Int(start &- busySince))
                engine.traceFlush()
                for hook in hooks { hook.threadWillSleep() }   // what was kept back goes before the pause
                control.parked.wrappingAdd(1, ordering: .sequentiallyConsistent)
                control.changed.notify()
                while control.paused.load(ordering: .sequentiallyConsistent) && !control.stopping.load(ordering: .sequentiallyConsistent) {
                    scheduler.event.wait(timeoutNanoseconds: Int64(Self.maxSleepNanoseconds)) {
                        !control.paused.load(ordering: .sequentiallyConsistent) || control.stopping.load(ordering: .sequentiallyConsistent)
                    }
                }
                control.parked.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                busySince = monotonicNanoseconds()
                engine.recordIdle(group: group, nanoseconds: Int(busySince &- start), woke: true, resumedAt: busySince)
                continue
            }
            var served = false
            for hook in hooks where hook.serviceThread() { served = true }
            if scheduler.runOnce(engine: engine) != nil || served {
                idleRounds = 0
                continue
            }
            // Exit only when the whole graph has ended: until then acks and
            // naks may still arrive for this group's processors.
            if scheduler.isFinished && engine.isFinished && !scheduler.hasPendingFeedback { return }
            idleRounds += 1
            if idleRounds <= Self.spinRounds {
                qg_cpu_relax()
                continue
            }
            if idleRounds == Self.spinRounds + 1 { idleSince = monotonicNanoseconds() }
            if monotonicNanoseconds() &- idleSince < Self.yieldNanoseconds {
                sched_yield()
                continue
            }
            idleRounds = 0
            let start = monotonicNanoseconds()
            engine.recordBusy(group: group, nanoseconds: Int(start &- busySince))
            var sleep = Self.maxSleepNanoseconds
            if let deadline = scheduler.nextSourceDeadline() { sleep = min(sleep, deadline > start ? deadline - start : 0) }
            var woke = WakeEvent.WaitResult.ready
            if sleep > 0 {
                for hook in hooks { hook.threadWillSleep() }
                engine.traceIdle(group: group)
                woke = scheduler.event.wait(timeoutNanoseconds: Int64(sleep)) {
                    control.stopping.load(ordering: .sequentiallyConsistent)
                        || control.paused.load(ordering: .sequentiallyConsistent)
                        || scheduler.hasWork(now: monotonicNanoseconds())
                        || hooks.contains { $0.hasThreadWork }
                        || (scheduler.isFinished && engine.isFinished)
                }
            }
            scheduler.retryBlockedSources()
            busySince = monotonicNanoseconds()
            if sleep > 0 { engine.traceWake(group: group, idleNanoseconds: busySince &- start, notified: woke == .notified) }
            engine.recordIdle(group: group, nanoseconds: Int(busySince &- start), woke: woke != .ready, resumedAt: busySince)
        }
    }

    /// Starts the group's `ThreadLifecycle` hooks, reports to `QueueGraph.start`
    /// and waits until every thread has started; false when this or another
    /// thread failed (the graph does not start).
    private func startHooks(_ lifecycles: [(queue: String, hook: any ThreadLifecycle)], wake: WakeEvent, started: inout Int) -> Bool {
        for (queue, hook) in lifecycles {
            do {
                try hook.threadDidStart(wake: wake)
                started += 1
            } catch {
                control.startFailure.withLock { $0 = $0 ?? .threadStartFailed(queue: queue, reason: "\(error)") }
                control.stopping.store(true, ordering: .sequentiallyConsistent)
                break
            }
        }
        control.started.wrappingAdd(1, ordering: .sequentiallyConsistent)
        control.changed.notify()
        while !control.go.load(ordering: .sequentiallyConsistent) && !control.stopping.load(ordering: .sequentiallyConsistent) {
            wake.wait(timeoutNanoseconds: Int64(Self.maxSleepNanoseconds)) {
                control.go.load(ordering: .sequentiallyConsistent) || control.stopping.load(ordering: .sequentiallyConsistent)
            }
        }
        return !control.stopping.load(ordering: .sequentiallyConsistent)
    }
}
