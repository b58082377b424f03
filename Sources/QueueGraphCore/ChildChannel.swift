import Atomics

/// One message on a child channel's rings: 64 bytes, one cache line.
///
/// Down (parent → child), `kind` is always `buffer`: the payload at
/// (`region`, `offset`) and the buffer's fields; `token` names it until it
/// comes back. Up (child → parent): `ack` (the queue's processor is done
/// with it: ack the sender now), `release` (the child let it go: `fate`,
/// and `reason` when dropped; `nak` when the queue naks its sender) or
/// `send` (give it to the exits in `pads`, with its fields as they are now).
///
/// Across a network (QueueGraphRemote) the same 64 bytes are each message's
/// header, in the host's byte order; `format` is then the link's format
/// (`LinkFormat.code`) and `region`/`offset` name where the payload landed.
@_spi(Runtime) public struct LinkMessage: Sendable {
    public enum Kind: UInt8 { case buffer, ack, release, send }

    public var token: UInt32 = 0
    public var kind: UInt8 = 0
    public var fate: UInt8 = 0
    public var reason: UInt8 = LinkMessage.noReason
    public var nak: UInt8 = 0
    public var region: UInt32 = 0
    public var format: UInt32 = 0
    public var offset: UInt64 = 0
    public var size: UInt64 = 0
    public var sequence: UInt64 = 0
    public var timestamp: UInt64 = 0
    public var priority: Int64 = 0
    public var pads: UInt64 = 0

    public static let noReason: UInt8 = 255

    public init(kind: Kind, token: UInt32) {
        self.kind = kind.rawValue
        self.token = token
    }

    /// Copies a buffer's fields into the message.
    public mutating func describe(_ buffer: Buffer) {
        size = UInt64(buffer.size)
        sequence = buffer.sequence
        timestamp = buffer.timestamp
        priority = Int64(buffer.priority)
    }

    /// Sets a buffer's fields from the message.
    public func apply(to buffer: Buffer) {
        buffer.size = Int(size)
        buffer.sequence = sequence
        buffer.timestamp = timestamp
        buffer.priority = Int(priority)
    }
}

/// The layout of a channel's control region (one memfd both processes map):
///
///     0       header: magic, generation, ready, end-of-stream, finished, capacity (u32 each, 64 B apart)
///     512     the parent's wake event (its link's thread sleeps on it)
///     576     the child's wake event
///     1024    statistics the child publishes (a seqlock and 64-bit counters)
///     65536   down ring: tail, head (128 B apart), then `capacity` messages
///     …       up ring: tail, head, then 2 × `capacity` messages
///
/// At most `capacity` buffers are in the child at once (the link's window),
/// and each sends at most two messages up (an ack and its release or send),
/// so neither ring can overflow.
struct ChannelLayout {
    let capacity: Int

    static let magic: UInt32 = 0x5147_4348   // "QGCH"
    enum Field: Int { case magic, generation, ready, endOfStream, finished, capacity }
    static let parentEvent = 512
    static let childEvent = 576
    static let stats = 1024
    static let statsBytes = 65536 - 1024
    static let down = 65536

    var up: Int { Self.down + Self.ringBytes(capacity) }
    var totalBytes: Int { up + Self.ringBytes(2 * capacity) }

    static func ringBytes(_ capacity: Int) -> Int { (256 + capacity * MemoryLayout<LinkMessage>.stride + 4095) & ~4095 }

    static func field(_ field: Field, in region: SharedMemory) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(at: (region.base + field.rawValue * 64).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
    }
}

/// The two ends of a single-producer single-consumer ring of messages in
/// shared memory. Each side keeps its own index and a cached copy of the
/// other's, so a push or pop touches the other side's line only when its
/// copy says full or empty.
///
/// Threading: one producer thread and one consumer thread (in either
/// process); `reset` only while neither runs.
@_spi(Runtime) public final class SharedRing: @unchecked Sendable {
    private let tailWord: UnsafeAtomic<UInt32>
    private let headWord: UnsafeAtomic<UInt32>
    private let slots: UnsafeMutablePointer<LinkMessage>
    private let mask: UInt32
    // Producer's state.
    private var tail: UInt32 = 0
    private var cachedHead: UInt32 = 0
    // Consumer's state.
    private var head: UInt32 = 0
    private var cachedTail: UInt32 = 0

    /// The bytes a ring of `capacity` messages needs (`init(at:)`'s base, 64-byte aligned).
    public static func bytes(capacity: Int) -> Int { 256 + capacity * MemoryLayout<LinkMessage>.stride }

    public init(at base: UnsafeMutableRawPointer, capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "ring capacity must be a power of two")
        tailWord = UnsafeAtomic(at: base.assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
        headWord = UnsafeAtomic(at: (base + 128).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
        slots = (base + 256).bindMemory(to: LinkMessage.self, capacity: capacity)
        mask = UInt32(capacity - 1)
        tail = tailWord.load(ordering: .acquiring)
        head = headWord.load(ordering: .acquiring)
        (cachedHead, cachedTail) = (head, tail)
    }

    /// Both indices back to 0 (a fresh channel for a new child).
    public func reset() {
        tailWord.store(0, ordering: .sequentiallyConsistent)
        headWord.store(0, ordering: .sequentiallyConsistent)
        (tail, cachedHead, head, cachedTail) = (0, 0, 0, 0)
    }

    /// Producer: false when full.
    @inline(__always)
    public func push(_ message: LinkMessage) -> Bool {
        if tail &- cachedHead > mask {
            cachedHead = headWord.load(ordering: .acquiring)
            if tail &- cachedHead > mask { return false }
        }
        slots[Int(tail & mask)] = message
        tail &+= 1
        tailWord.store(tail, ordering: .releasing)
        return true
    }

    /// Consumer: the oldest message, or nil when empty.
    @inline(__always)
    public func pop() -> LinkMessage? {
        if head == cachedTail {
            cachedTail = tailWord.load(ordering: .acquiring)
            if head == cachedTail { return nil }
        }
        let message = slots[Int(head & mask)]
        head &+= 1
        headWord.store(head, ordering: .releasing)
        return message
    }

    /// Consumer: whether a message is waiting (any thread may ask, approximately).
    public var hasMessages: Bool { tailWord.load(ordering: .acquiring) != headWord.load(ordering: .relaxed) }
}

/// The far side's statistics as counters: per queue of its part (the
/// parent knows the names and order) fixed 64-bit counters, then its
/// threads' sums. A child publishes them in the control region behind a
/// sequence word (odd while it writes); a remote host sends them.
@_spi(Runtime) public enum ChannelStatistics {
    private static let perQueue = 8 + DropReason.allCases.count
    private static let perThread = 4

    /// How many counters `encode` writes for `queues` queues.
    public static func count(queues: Int) -> Int { queues * perQueue + perThread }

    public static func encode(_ statistics: GraphStatistics, queues names: [String]) -> [Int64] {
        let byName = Dictionary(statistics.queues.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var words: [Int64] = []
        words.reserveCapacity(count(queues: names.count))
        func put(_ value: Int) { words.append(Int64(value)) }
        for name in names {
            let q = byName[name]
            put(q?.arrived ?? 0); put(q?.popped ?? 0); put(q?.acks ?? 0); put(q?.naks ?? 0)
            put(q?.abandoned ?? 0); put(q?.depth ?? 0); put(q?.maxDepth ?? 0); put(q?.bytesPopped ?? 0)
            for reason in DropReason.allCases { put(q?.dropped[reason] ?? 0) }
        }
        let t = statistics.threads.dropFirst().reduce(statistics.threads.first) { $0?.adding($1) }
        put(t?.invocations ?? 0); put(t?.busyNanoseconds ?? 0); put(t?.idleNanoseconds ?? 0); put(t?.wakeups ?? 0)
        return words
    }

    /// The rows and thread `words` hold (thread group 0 until the reader
    /// places them); nil when there are not `count(queues:)` of them.
    public static func decode(_ words: [Int64], queues names: [String]) -> (queues: [QueueStatistics], thread: ThreadStatistics)? {
        guard words.count == count(queues: names.count) else { return nil }
        var i = 0
        func take() -> Int { defer { i += 1 }; return Int(words[i]) }
        let queues = names.map { name in
            let (arrived, popped, acks, naks, abandoned, depth, maxDepth, bytes) = (take(), take(), take(), take(), take(), take(), take(), take())
            var dropped: [DropReason: Int] = [:]
            for reason in DropReason.allCases { let n = take(); if n != 0 { dropped[reason] = n } }
            return QueueStatistics(name: name, thread: 0, arrived: arrived, popped: popped, dropped: dropped, acks: acks, naks: naks,
                                   abandoned: abandoned, depth: depth, maxDepth: maxDepth, bytesPopped: bytes,
                                   residencyMeanNanoseconds: 0, residencyMaxNanoseconds: 0, residencySamples: 0)
        }
        let threadStatistics = ThreadStatistics(group: 0, queues: names, invocations: take(), busyNanoseconds: take(),
                                                idleNanoseconds: take(), wakeups: take())
        return (queues, threadStatistics)
    }

    /// The sequence word and the counters after it.
    private static func block(in region: SharedMemory) -> (sequence: UnsafeAtomic<UInt64>, words: UnsafeMutablePointer<Int64>) {
        (UnsafeAtomic(at: (region.base + ChannelLayout.stats).assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self)),
         (region.base + ChannelLayout.stats + 8).assumingMemoryBound(to: Int64.self))
    }

    static func write(_ statistics: GraphStatistics, queues names: [String], to region: SharedMemory) {
        let (sequence, words) = block(in: region)
        let encoded = encode(statistics, queues: names)
        guard 1 + encoded.count <= ChannelLayout.statsBytes / 8 - 1 else { return }
        sequence.wrappingIncrement(ordering: .sequentiallyConsistent)   // odd: writing
        for (i, word) in encoded.enumerated() { words[i] = word }
        sequence.wrappingIncrement(ordering: .sequentiallyConsistent)   // even: done
    }

    /// The last complete snapshot (nil while none was written).
    static func read(queues names: [String], from region: SharedMemory) -> (queues: [QueueStatistics], thread: ThreadStatistics)? {
        let (sequence, words) = block(in: region)
        var copy = [Int64](repeating: 0, count: count(queues: names.count))
        for _ in 0..<1000 {
            let before = sequence.load(ordering: .sequentiallyConsistent)
            if before == 0 { return nil }
            if before & 1 == 1 { continue }
            for j in copy.indices { copy[j] = UnsafeAtomic<Int64>(at: UnsafeMutableRawPointer(words + j).assumingMemoryBound(to: UnsafeAtomic<Int64>.Storage.self)).load(ordering: .relaxed) }
            if sequence.load(ordering: .sequentiallyConsistent) == before { break }
        }
        return decode(copy, queues: names)
    }
}
