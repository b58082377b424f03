import QueueGraphTestKit
import Testing
@testable import QueueGraphCore

/// Sends each buffer on together with the one waiting after it, that one
/// first (pairs swapped): `peek` must name the buffer `remove` then takes.
final class PairSwapper: BufferProcessor, @unchecked Sendable {
    var peeked: [UInt64] = []
    var removed: [UInt64] = []

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        if let next = context.peek() {
            peeked.append(next.sequence)
            let taken = context.remove()!
            removed.append(taken.sequence)
            context.sendTo(0, taken)
        }
        context.sendTo(0, buffer)
        return .ok
    }
}

@Suite("The queue's own API: peek and remove (the seed's Queue)")
struct QueueAPITests {
    @Test("peek names the buffer that remove takes next, in the queue's discipline", arguments: [QueueDiscipline.fifo, .lifo, .prio])
    func peekAndRemove(discipline: QueueDiscipline) throws {
        let swapper = PairSwapper()
        let harness = try ProcessorHarness(QueueConfig(name: "swap", size: 16, discipline: discipline, processor: { _ in swapper }))
        for sequence in UInt64(0)..<6 { harness.push(harness.makeBuffer(sequence: sequence, priority: Int(sequence % 3))) }
        harness.finish()
        #expect(swapper.peeked == swapper.removed && swapper.removed.count == 3)
        let orders: [String: [UInt64]] = [
            "fifo": [1, 0, 3, 2, 5, 4], "lifo": [4, 5, 2, 3, 0, 1],
            "prio": [5, 2, 4, 1, 3, 0],   // priorities 2, 2, 1, 1, 0, 0; equal ones in arrival order
        ]
        #expect(harness.outputs[0] == orders[discipline.name])
        #expect(harness.pool.leaks().isEmpty)
        #expect(harness.statistics().ledgerProblems().isEmpty)
        #expect(harness.statistics()[queue: "swap"]!.popped == 6)
    }

    @Test("remove on a reuse queue gives a private copy of a shared buffer, and acks its sender on an ack queue")
    func removeKeepsTheQueueRules() throws {
        let swapper = PairSwapper()
        let harness = try ProcessorHarness(QueueConfig(name: "swap", size: 16, sync: .ack, buffers: .reuse, processor: { _ in swapper }),
                                           poolSize: 16)
        let buffers = (UInt64(0)..<4).map { harness.makeBuffer(sequence: $0) }
        for buffer in buffers {
            buffer.addHold()   // someone else holds it too: read-only here
            harness.push(buffer)
        }
        harness.finish()
        #expect(harness.outputs[0] == [1, 0, 3, 2])
        for buffer in buffers { buffer.releaseHold() }
        #expect(harness.pool.leaks().isEmpty)
        #expect(harness.statistics().ledgerProblems().isEmpty)
    }
}

@Suite("A queue on its own: QueueConfig.createQueue (the seed's Queue)")
struct StandaloneQueueTests {
    func buffers(_ count: Int, pool: TrackingPool) -> [Buffer] {
        (0..<count).map { i in
            let buffer = pool.createBuffer(payloadSize: 10, pad: -1)!
            (buffer.sequence, buffer.priority, buffer.size) = (UInt64(i), i % 2, 10)
            return buffer
        }
    }

    @Test("each management policy admits, drops or refuses as in a graph, and the counters balance")
    func admissions() throws {
        let pool = TrackingPool(name: "app", count: 64, payloadCapacity: 16)
        func admitted(_ management: QueueManagement, byteBound: Int? = nil) -> [String] {
            let queue = QueueConfig(name: "q", size: 2, management: management, byteBound: byteBound, processor: { _ in CountingSink() }).createQueue()
            let results = buffers(3, pool: pool).map { buffer -> String in
                switch queue.add(buffer) {
                case .accepted: return "accepted"
                case .acceptedDropping(let victim):
                    victim.releaseHold()
                    return "accepted, dropped \(victim.sequence)"
                case .dropped(let reason):
                    buffer.releaseHold()
                    return "dropped: \(reason)"
                case .full:
                    buffer.releaseHold()
                    return "full"
                }
            }
            #expect(queue.count <= 2 && queue.bytes == queue.count * 10)
            while let buffer = queue.remove() { buffer.releaseHold() }
            #expect(queue.statistics().isBalanced && queue.count == 0)
            return results
        }
        #expect(admitted(.default) == ["accepted", "accepted", "full"])
        #expect(admitted(.taildrop) == ["accepted", "accepted", "dropped: taildrop"])
        #expect(admitted(.headdrop) == ["accepted", "accepted", "accepted, dropped 0"])
        #expect(admitted(.taildrop, byteBound: 15) == ["accepted", "dropped: bytes", "dropped: bytes"])
        #expect(pool.leaks().isEmpty)
    }

    @Test("peek and remove follow the discipline", arguments: [QueueDiscipline.fifo, .lifo, .prio])
    func discipline(_ discipline: QueueDiscipline) throws {
        let pool = TrackingPool(name: "app", count: 8, payloadCapacity: 16)
        let queue = QueueConfig(name: "q", size: 8, discipline: discipline, processor: { _ in CountingSink() }).createQueue()
        for buffer in buffers(4, pool: pool) { #expect(queue.add(buffer) == .accepted) }
        var order: [UInt64] = []
        while let next = queue.peek() {
            let buffer = queue.remove()!
            #expect(buffer == next)
            order.append(buffer.sequence)
            buffer.releaseHold()
        }
        #expect(order == ["fifo": [0, 1, 2, 3], "lifo": [3, 2, 1, 0], "prio": [1, 3, 0, 2]][discipline.name]!)
        #expect(queue.statistics().popped == 4 && pool.leaks().isEmpty)
    }
}

extension Queue.Admission: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.accepted, .accepted), (.full, .full): true
        case (.acceptedDropping(let x), .acceptedDropping(let y)): x == y
        case (.dropped(let x), .dropped(let y)): x == y
        default: false
        }
    }
}

/// Sends `burst` buffers of 100 bytes per call, `count` in all.
final class BurstSource: BufferSource, @unchecked Sendable {
    let count: Int, burst: Int
    var sent = 0
    init(count: Int, burst: Int) { (self.count, self.burst) = (count, burst) }
    func produce(context: ProcessContext) -> ProduceResult {
        for _ in 0..<burst where sent < count {
            guard let buffer = context.acquireBuffer(size: 100) else { return .waitingForBuffer }
            buffer.size = 100
            sent += 1
            context.sendTo(0, buffer)
        }
        return sent == count ? .endOfStream : .produced
    }
}

@Suite("Memory statistics (the seed's memory size / queue size)")
struct MemoryStatisticsTests {
    @Test("bytes queued and allocated per queue, bytes in use and allocated per pool, while buffers wait and after", arguments: [QueueDiscipline.fifo, .prio])
    func bytes(discipline: QueueDiscipline) throws {
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in BurstSource(count: 6, burst: 3) },
                                creator: { q in BufferPool(name: q.name, count: 8, payloadCapacity: 128) }))
            .adding(QueueConfig(name: "sink", size: 8, discipline: discipline, outPads: 0, processor: { _ in CountingSink() }))
            .connecting("src", to: "sink")
            .createSteppedGraph()
        _ = graph.step()   // the source's first burst, nothing consumed yet
        let waiting = graph.statistics()
        #expect(waiting[queue: "sink"]!.bytesQueued == 300)   // a ring (fifo) or the locked store (prio)
        #expect(waiting[queue: "sink"]!.bytesAllocated >= 8 * MemoryLayout<Buffer>.stride)
        #expect(waiting.pools[0].bytesInUse == 3 * waiting.pools[0].bytesAllocated / 8)
        #expect(waiting.pools[0].bytesAllocated >= 8 * 128)
        graph.run()
        let done = graph.statistics()
        #expect(done[queue: "sink"]!.bytesQueued == 0 && done.pools[0].bytesInUse == 0)
        #expect(done.table().contains("bytes queued") && done.ledgerProblems().isEmpty)
    }
}

/// Earliest deadline first: the buffer with the smallest `timestamp` (its
/// deadline) leaves first, equal deadlines in arrival order; the latest
/// deadline is the one wanted least. The docs' worked example of a custom
/// discipline (docs/architecture.md).
final class EarliestDeadlineFirst: QueueDisciplineHandler {
    private var waiting: [WaitingBuffer] = []   // sorted by deadline, then arrival

    var count: Int { waiting.count }
    func insert(_ item: WaitingBuffer) {
        let at = waiting.firstIndex { $0.buffer.timestamp > item.buffer.timestamp } ?? waiting.endIndex
        waiting.insert(item, at: at)
    }
    func next() -> WaitingBuffer? { waiting.first }
    func removeNext() -> WaitingBuffer? { waiting.isEmpty ? nil : waiting.removeFirst() }
    func removeLeastWanted() -> WaitingBuffer? { waiting.popLast() }
    func removeAll() -> [WaitingBuffer] { defer { waiting = [] }; return waiting }
}

/// Keeps room for even sequence numbers: an odd one is dropped once the
/// queue is half full, and a full queue makes room by dropping the buffer
/// the discipline wants least.
final class EvenFirst: QueueManagementHandler {
    func admit(_ buffer: Buffer, depth: Int, bytes: Int, size: Int) -> ManagementDecision {
        if buffer.sequence % 2 == 1 && depth * 2 >= size { return .dropArrival }
        return depth >= size ? .dropLeastWanted : .accept
    }
}

let edf = CustomDiscipline(name: "edf") { EarliestDeadlineFirst() }
let evenFirst = CustomManagement(name: "even-first") { EvenFirst() }

@Suite("An application's queue handlers (the seed's QueueHandlers)")
struct QueueHandlerTests {
    @Test("a custom discipline orders a queue's departures; a custom management policy admits and drops, counted as 'policy'")
    func customHandlers() throws {
        let pool = TrackingPool(name: "app", count: 16, payloadCapacity: 16)
        let queue = QueueConfig(name: "q", size: 4, management: .custom(evenFirst), discipline: .custom(edf),
                                processor: { _ in CountingSink() }).createQueue()
        var dropped: [UInt64] = []
        for (sequence, deadline) in [(0, 50), (1, 10), (2, 40), (3, 20), (4, 30), (6, 5), (8, 60)] as [(UInt64, UInt64)] {
            let buffer = pool.createBuffer(payloadSize: 8, pad: -1)!
            (buffer.sequence, buffer.timestamp) = (sequence, deadline)
            switch queue.add(buffer) {
            case .accepted: break
            case .acceptedDropping(let victim):
                dropped.append(victim.sequence)
                victim.releaseHold()
            case .dropped(let reason):
                #expect(reason == .policy)
                dropped.append(buffer.sequence)
                buffer.releaseHold()
            case .full: Issue.record("a policy that always decides never refuses")
            }
        }
        // 0, 1 and 2 in; 3, odd with the queue half full: dropped; 4 fills the queue;
        // 6 drops the latest deadline (0, at 50) for itself, and 8 drops 2 (at 40).
        #expect(dropped == [3, 0, 2])
        var order: [UInt64] = []
        while let buffer = queue.remove() {
            order.append(buffer.sequence)
            buffer.releaseHold()
        }
        #expect(order == [6, 1, 4, 8])   // deadlines 5, 10, 30, 60
        let statistics = queue.statistics()
        #expect(statistics.dropped[.policy] == 3 && statistics.isBalanced && pool.leaks().isEmpty)
    }

    @Test("registered handlers are named after the built-ins, sorted")
    func builtInNamesReserved() {
        var registry = ProcessorRegistry.builtIn
        registry.register(discipline: edf)
        registry.register(management: evenFirst)
        #expect(registry.disciplineNames == ["fifo", "lifo", "prio", "edf"])
        #expect(registry.managementNames == ["default", "taildrop", "headdrop", "red", "even-first"])
    }
}
