import QueueGraphCore
import Synchronization

/// A `BufferPool` for tests that remembers which buffers are out, refuses a
/// buffer returned twice, and says which leaked: check `leaks()` (or
/// `Ledger.problems`) when the test ends.
///
/// Threading: as `BufferPool` (any thread).
public final class TrackingPool: BufferPool, @unchecked Sendable {
    private let out = Locked<[Int: UInt64]>([:])

    public override func createBuffer(payloadSize: Int, pad: Int) -> Buffer? {
        guard let buffer = super.createBuffer(payloadSize: payloadSize, pad: pad) else { return nil }
        out.withLock { $0[buffer.slot] = buffer.sequence }
        return buffer
    }

    public override func destroyBuffer(_ buffer: Buffer, fate: BufferFate) {
        let known = out.withLock { $0.removeValue(forKey: buffer.slot) != nil }
        precondition(known, "buffer in slot \(buffer.slot) returned to '\(name)' twice or never handed out")
        super.destroyBuffer(buffer, fate: fate)
    }

    /// The acquire sequence numbers of the buffers still out, sorted.
    public func leaks() -> [UInt64] { out.withLock { Array($0.values) }.sorted() }
}
