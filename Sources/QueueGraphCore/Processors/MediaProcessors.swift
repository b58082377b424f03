#if canImport(Glibc)
import Glibc
#endif

/// A source of test buffers (the graph files' `testsrc`): `count` buffers
/// (0 for endless) of `size` bytes filled with a pattern, at `rate` buffers
/// per second (0 for as fast as the graph takes them), with priorities
/// cycling through `0..<priorities`. Each buffer's `timestamp` is its
/// presentation time: `sequence / rate` seconds after the first.
///
/// With `degradeOnNak`, every nak (a buffer dropped downstream on a `nak`
/// queue) lowers the rate by 10 %, down to 1 buffer/s: the source backs off
/// until the graph keeps up.
///
/// Threading: as `BufferProcessor` (its queue's scheduler thread); read the
/// counters after the graph stopped.
public final class TestSource: BufferSource, LiveParameters, @unchecked Sendable {
    /// What the payload bytes hold.
    public enum Pattern: String, Sendable, CaseIterable {
        /// All zero bytes (nothing written: the cheapest).
        case zeros
        /// Byte i of buffer n is (n + i) mod 256.
        case counter
        /// Pseudo-random bytes (xorshift, seeded by the sequence number).
        case random
    }

    public let count: Int
    public let size: Int
    public let pattern: Pattern
    public let priorities: Int
    public let degradeOnNak: Bool
    /// The current rate in buffers per second (0: unpaced).
    public private(set) var rate: Double
    public private(set) var sent = 0
    public private(set) var acks = 0
    public private(set) var naks = 0
    private var nextDue: UInt64 = 0

    public init(count: Int, size: Int, pattern: Pattern = .counter, rate: Double = 0, priorities: Int = 1,
                degradeOnNak: Bool = false) {
        self.count = count
        self.size = size
        self.pattern = pattern
        self.rate = rate
        self.priorities = max(1, priorities)
        self.degradeOnNak = degradeOnNak
    }

    /// `rate` changes live: pacing starts again from now at the new rate.
    public func setParameter(_ name: String, to value: ParameterValue) {
        guard name == "rate", case .number(let rate) = value else { return }
        self.rate = rate
        nextDue = 0
    }

    public func produce(context: ProcessContext) -> ProduceResult {
        if count > 0 && sent >= count { return .endOfStream }
        if rate > 0 {
            let now = context.now
            if nextDue == 0 { nextDue = now }
            if now < nextDue { return .waitingUntil(nextDue) }
        }
        guard let buffer = context.acquireBuffer(size: size) else { return .waitingForBuffer }
        buffer.sequence = UInt64(sent)
        buffer.priority = sent % priorities
        buffer.timestamp = rate > 0 ? nextDue : 0
        fill(buffer.bytes, sequence: sent)
        if context.sendTo(0, buffer) == .full {
            context.doneBuffer(buffer)   // the scheduler does not run a source into a full queue; kept for safety
            return .produced
        }
        sent += 1
        if rate > 0 { nextDue &+= UInt64(1e9 / rate) }
        return count > 0 && sent == count ? .endOfStream : .produced
    }

    private func fill(_ bytes: UnsafeMutableRawBufferPointer, sequence: Int) {
        switch pattern {
        case .zeros:
            break
        case .counter:
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: sequence &+ i) }
        case .random:
            var state = UInt64(sequence) &* 0x9E37_79B9_7F4A_7C15 | 1
            for i in bytes.indices {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                bytes[i] = UInt8(truncatingIfNeeded: state)
            }
        }
    }

    public func recvAck(_ buffer: Buffer, context: ProcessContext) {
        acks += 1
    }

    public func recvNak(_ buffer: Buffer, reason: DropReason, context: ProcessContext) {
        naks += 1
        if degradeOnNak && rate > 0 { rate = max(1, rate * 0.9) }
    }
}

/// Writes every buffer's bytes to a file, then releases it (the graph
/// files' `filesink`). Each buffer is one `write(2)` (no stdio buffer), so
/// a buffer counts as consumed only once the kernel has all its bytes. A
/// file that cannot be opened refuses the graph's start with the reason;
/// one that cannot be written makes each buffer fail (counted as `failed`
/// drops), with the first reason in `failureReason`.
///
/// Threading: as `BufferProcessor`.
public final class FileSink: ThreadLifecycle, FailureReporting, @unchecked Sendable {
    public let path: String
    public private(set) var failureReason: String?
    public private(set) var bytesWritten = 0
    private var fd: Int32

    public init(path: String, append: Bool = false) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0o644)
        if fd < 0 { failureReason = "cannot open '\(path)': \(String(cString: strerror(errno)))" }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// A file that could not be opened refuses the graph's start.
    public func threadDidStart(wake: WakeEvent) throws {
        if fd < 0, let failureReason { throw ProcessorError(failureReason) }
    }
    public func threadWillEnd() {}

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard fd >= 0 else { return .failed }
        let bytes = UnsafeRawBufferPointer(buffer.bytes)
        if case let error = writeAll(fd, bytes), error != 0 {
            if failureReason == nil { failureReason = "cannot write '\(path)': \(String(cString: strerror(error)))" }
            return .failed
        }
        bytesWritten += bytes.count
        context.doneBuffer(buffer)
        return .ok
    }

    public func endOfStream(context: ProcessContext) {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}

/// Passes buffers on at most `rate` per second, sleeping its thread until
/// each one's turn (the graph files' `ratelimit`): a reproducible bottleneck
/// for overload experiments. Without out pads it releases them instead.
///
/// Threading: as `BufferProcessor`; it blocks its scheduler thread while it waits.
public final class RateLimiter: LiveParameters, @unchecked Sendable {
    public private(set) var rate: Double
    private var nextDue: UInt64 = 0

    public init(rate: Double) { self.rate = rate }

    public func setParameter(_ name: String, to value: ParameterValue) {
        if name == "rate", case .number(let rate) = value { self.rate = rate }
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        let now = context.now
        if nextDue > now { sleep(nanoseconds: nextDue - now) }
        nextDue = max(nextDue, now) &+ UInt64(1e9 / rate)
        passOn(buffer, context: context)
        return .ok
    }
}

/// Holds each buffer for a fixed time before passing it on (the graph
/// files' `delay`): a reproducible slow consumer. Without out pads it
/// releases the buffer after the delay (a slow sink).
///
/// Threading: as `BufferProcessor`; it blocks its scheduler thread for the delay.
public final class Delay: LiveParameters, @unchecked Sendable {
    public private(set) var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public func setParameter(_ name: String, to value: ParameterValue) {
        if name == "us", case .integer(let us) = value { nanoseconds = UInt64(us) * 1_000 }
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        sleep(nanoseconds: nanoseconds)
        passOn(buffer, context: context)
        return .ok
    }
}

/// Sends a buffer through pad 0, or releases it when there is no pad: the
/// end of a processor that works in place. A `default` queue at pad 0 that
/// is full (two upstream queues filling it at once, or a processor sending
/// between invocations without asking `ProcessContext.hasRoom`) counts it
/// as a `taildrop` on arrival: never lost without a count.
public func passOn(_ buffer: Buffer, context: ProcessContext) {
    if context.outPadCount == 0 {
        context.doneBuffer(buffer)
    } else {
        context.sendTo(0, buffer, dropWhenFull: true)
    }
}

private func sleep(nanoseconds: UInt64) {
    guard nanoseconds > 0 else { return }
    var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

extension TestSource: FormatAware {
    public func negotiate(arriving: [LinkFormat]) -> [LinkFormat] { [.bytes] }
}
extension RateLimiter: FormatAware {
    public func negotiate(arriving: [LinkFormat]) -> [LinkFormat] { passThrough(arriving) }
}
extension Delay: FormatAware {
    public func negotiate(arriving: [LinkFormat]) -> [LinkFormat] { passThrough(arriving) }
}
