import CQueueGraph
#if canImport(Glibc)
import Glibc
#endif

/// Wakes threads that sleep until something changes (a queue gained a buffer,
/// a full queue gained room, a pool got a buffer back, the graph changed state).
///
/// Waiters follow the prepare / re-check / wait protocol so that no notify is
/// lost. Any thread may call any method. A waiter pays for the store-load
/// fence (membarrier(2), a few microseconds, only when about to sleep), so a
/// notify with no waiter costs a compiler barrier and one load.
public final class WakeEvent: @unchecked Sendable {
    private let event: UnsafeMutablePointer<qg_event>
    /// What keeps the memory of an event placed in shared memory mapped.
    private let region: SharedMemory?

    public init() {
        event = .allocate(capacity: 1)
        qg_event_init(event)
        region = nil
    }

    /// An event at `offset` in `region`, which another process maps too, so
    /// that either process can wake the other's sleeping thread. The
    /// process that creates the region initialises the event (`initialize`);
    /// one that maps it later does not.
    public init(in region: SharedMemory, at offset: Int, initialize: Bool) {
        precondition(offset % 64 == 0 && offset + MemoryLayout<qg_event>.size <= region.size, "event outside its region")
        event = (region.base + offset).bindMemory(to: qg_event.self, capacity: 1)
        if initialize { qg_event_init_shared(event) }
        self.region = region
    }

    deinit { if region == nil { event.deallocate() } }

    /// Wakes every thread waiting now.
    @inline(__always)
    public func notify() { qg_event_notify(event) }

    /// Whether a thread may be waiting; for a caller that published its
    /// change just before (any atomic store) and then checks more cheaply
    /// than `notify()` whether a wake is needed.
    @inline(__always)
    var mayHaveWaiters: Bool { qg_event_has_waiters(event) != 0 }

    /// Wakes every waiter without checking first (after `mayHaveWaiters`).
    func wake() { qg_event_wake(event) }

    /// How a `wait` ended.
    public enum WaitResult: Sendable, Equatable {
        /// `ready()` held after announcing the wait: it did not sleep.
        case ready
        /// It slept and a notify woke it.
        case notified
        /// It slept until the timeout (or the kernel woke it for no reason).
        case timedOut
    }

    /// Sleeps until notified or until `timeoutNanoseconds`, unless `ready()`
    /// already holds after announcing the wait.
    @discardableResult
    public func wait(timeoutNanoseconds: Int64, unless ready: () -> Bool) -> WaitResult {
        let epoch = qg_event_prepare(event)
        if ready() {
            qg_event_cancel(event)
            return .ready
        }
        return qg_event_wait(event, epoch, timeoutNanoseconds) != 0 ? .notified : .timedOut
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 { qg_now_ns() }

/// Writes `text` to standard error at once (unbuffered `write(2)`):
/// diagnostics that must not be lost when a process dies.
public func writeStandardError(_ text: String) {
    _ = text.withCString { writeAll(2, UnsafeRawBufferPointer(start: $0, count: strlen($0))) }
}

/// Writes all of `bytes` to `fd` with `write(2)` (no stdio buffer, so an
/// error is seen at once), retrying short writes and interruptions.
/// Returns 0, or the errno of the write that failed.
///
/// Threading: any thread.
@discardableResult
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    var rest = bytes
    while !rest.isEmpty {
        let n = write(fd, rest.baseAddress, rest.count)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return n < 0 ? errno : EIO }
        rest = UnsafeRawBufferPointer(rebasing: rest[n...])
    }
    return 0
}
