import Foundation
import QueueGraphCore
import QueueGraphRender
import Synchronization
import Testing

@Suite("BufferProvider protocol")
struct BufferProviderTests {
    /// The protocol, written out: every (state, action) pair and where it leads.
    static let legal: [BufferState: [BufferAction: BufferState]] = [
        .free: [.lock: .locked],
        .locked: [.emit: .emitted, .block: .blocked, .release: .free],
        .emitted: [.block: .blocked, .release: .free],
        .blocked: [.release: .free],
    ]

    @Test("the state machine allows exactly the legal transitions")
    func stateMachine() {
        for state in BufferState.allCases {
            for action in BufferAction.allCases {
                #expect(state.after(action) == Self.legal[state]?[action], "\(state) + \(action)")
            }
        }
    }

    /// Drives a fresh buffer into `state` with legal steps.
    private func buffer(in state: BufferState, from slice: BufferSlice) throws -> BufferHandle {
        let handle = try slice.lock(.bytes(100))
        switch state {
        case .free, .locked: break
        case .emitted: try slice.emit(handle)
        case .blocked: try slice.block(handle)
        }
        if state == .free { try slice.release(handle) }
        return handle
    }

    @Test("through a slice every legal step succeeds and every illegal one throws, leaving the state as it was",
          arguments: [BufferState.locked, .emitted, .blocked])
    func transitions(from state: BufferState) throws {
        let slice = BufferManager().slice()
        for action in BufferAction.allCases where action != .lock {
            let handle = try buffer(in: state, from: slice)
            let step = { (h: BufferHandle) throws(BufferProtocolError) in
                switch action {
                case .lock: break
                case .emit: try slice.emit(h)
                case .block: try slice.block(h)
                case .release: try slice.release(h)
                }
            }
            if let next = state.after(action) {
                try step(handle)
                if next == .free {
                    #expect(throws: BufferProtocolError.released(nil)) { _ = try slice.state(handle) }
                } else {
                    #expect(try slice.state(handle) == next)
                    try slice.release(handle)
                }
            } else {
                #expect(throws: BufferProtocolError.illegal(action, in: state)) { try step(handle) }
                #expect(try slice.state(handle) == state)
                try slice.release(handle)
            }
        }
        #expect(slice.statistics.bytesLeased == 0)
        #expect(slice.statistics.locks == slice.statistics.releases)
    }

    @Test("blocks released on a thread that never locks go back to the manager, where the locking thread finds them")
    func releaseOnlySliceKeepsNothing() throws {
        let manager = BufferManager(sliceHighWater: 16)
        let producer = manager.slice(), sink = manager.slice()
        for _ in 0..<100 {   // a frame made on one thread, let go on another (a sink, a link losing a child's frames)
            let handle = try producer.lock(.bytes(4096))
            try sink.release(handle)
        }
        #expect(sink.freeBlocks == 0)
        #expect(manager.statistics.allocations == 1, "the producer made a new block for every frame the sink kept")
        #expect(manager.spareBlocks + producer.freeBlocks == 1)
    }

    @Test("a released handle is dead: every step and every access throws, even once the block is lent again")
    func afterRelease() throws {
        let slice = BufferManager().slice()
        let handle = try slice.lock(.bytes(64))
        try slice.release(handle)
        let again = try slice.lock(.bytes(64))       // the same block, the next generation
        #expect(again != handle)
        #expect(throws: BufferProtocolError.released(.release)) { try slice.release(handle) }
        #expect(throws: BufferProtocolError.released(.emit)) { try slice.emit(handle) }
        #expect(throws: BufferProtocolError.released(.block)) { try slice.block(handle) }
        #expect(throws: BufferProtocolError.released(nil)) { _ = try slice.bytes(handle) }
        #expect(try slice.state(again) == .locked)
        try slice.release(again)
    }

    @Test("a typed payload is initialised on each lock and deinitialised on each release, exactly once")
    func typedPayload() throws {
        /// Counts its deinit: a payload deinitialised twice (or never) shows.
        final class Tracked: Sendable {
            let id: Int
            let onDeinit: @Sendable () -> Void
            init(id: Int, onDeinit: @escaping @Sendable () -> Void) { (self.id, self.onDeinit) = (id, onDeinit) }
            deinit { onDeinit() }
        }
        struct Frame { var object: Tracked; var number: Int }
        let counter = Counters()
        let descriptor = BufferDescriptor.typed(Frame.self) {
            Frame(object: Tracked(id: counter.made.add(1, ordering: .relaxed).newValue) { counter.unmade.add(1, ordering: .relaxed) }, number: -1)
        }
        let slice = BufferManager().slice()
        for round in 0..<300 {
            let handle = try slice.lock(descriptor)
            let frame = try slice.payload(handle, as: Frame.self)
            #expect(frame.pointee.number == -1)      // freshly made, not last round's
            frame.pointee.number = round
            switch round % 3 {
            case 0: try slice.emit(handle)
            case 1: try slice.emit(handle); try slice.block(handle)
            default: break                            // released without emit
            }
            try slice.release(handle)
            #expect(counter.made.load(ordering: .relaxed) == round + 1)
            #expect(counter.unmade.load(ordering: .relaxed) == round + 1)
        }
        #expect(slice.statistics.allocations == 1)    // one block, reused 300 times
    }

    @Test("emergencyCleanup takes back a buffer in any state after a failed job, with or without the payload's deinit; withBuffer uses it when the job throws")
    func emergencyCleanup() throws {
        final class Tracked: Sendable {
            let onDeinit: @Sendable () -> Void
            init(onDeinit: @escaping @Sendable () -> Void) { self.onDeinit = onDeinit }
            deinit { onDeinit() }
        }
        let counter = Counters()
        let descriptor = BufferDescriptor.typed(Tracked.self) {
            counter.made.add(1, ordering: .relaxed)
            return Tracked { counter.unmade.add(1, ordering: .relaxed) }
        }
        let slice = BufferManager().slice()
        for (step, runDeinit) in [(nil, true), (BufferAction.emit, false), (.block, true), (nil, false)] as [(BufferAction?, Bool)] {
            let handle = try slice.lock(descriptor)
            switch step {
            case .emit?: try slice.emit(handle)
            case .block?: try slice.block(handle)
            default: break
            }
            let unmadeBefore = counter.unmade.load(ordering: .relaxed)
            try slice.emergencyCleanup(handle, runDeinit: runDeinit)
            #expect(counter.unmade.load(ordering: .relaxed) == unmadeBefore + (runDeinit ? 1 : 0))
            #expect(throws: BufferProtocolError.released(nil)) { _ = try slice.state(handle) }
        }
        struct JobFailed: Error {}
        #expect(throws: JobFailed.self) { try slice.withBuffer(.bytes(64)) { _ in throw JobFailed() } }
        #expect(try slice.withBuffer(.bytes(64)) { handle in try slice.state(handle) } == .locked)
        let statistics = slice.statistics
        #expect(statistics.emergencyCleanups == 5 && statistics.releases == 6 && statistics.locks == 6 && statistics.bytesLeased == 0)
    }

    final class Counters: Sendable {
        let made = Atomic<Int>(0)
        let unmade = Atomic<Int>(0)
    }

    @Test("a 50-step render chain locks, emits and releases every buffer; its output equals a sequential recomputation")
    func renderChain() throws {
        let size = 64 * 48 * 4
        let slice = BufferManager().slice()
        #expect(slice.announce(2, of: .bytes(size)) == 2)
        func step(_ k: Int, _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) {
            for i in 0..<size { output[i] = input[i] &* 31 &+ UInt8(truncatingIfNeeded: k &+ i >> 3) }
        }
        // The chain through the provider: each step's output is the next one's input.
        var input = try slice.lock(.bytes(size))
        let first = try slice.bytes(input)
        for i in 0..<size { first[i] = UInt8(truncatingIfNeeded: i &* 7) }
        try slice.emit(input)
        for k in 0..<50 {
            let output = try slice.lock(.bytes(size))
            step(k, UnsafeRawBufferPointer(try slice.bytes(input)), try slice.bytes(output))
            try slice.emit(output)
            try slice.release(input)
            input = output
        }
        let result = Array(try slice.bytes(input))
        try slice.release(input)
        // The same computation on plain arrays.
        var expected = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for k in 0..<50 {
            var next = [UInt8](repeating: 0, count: size)
            expected.withUnsafeBytes { a in next.withUnsafeMutableBytes { b in step(k, a, b) } }
            expected = next
        }
        #expect(result == expected)
        let stats = slice.statistics
        #expect(stats.locks == 51 && stats.releases == 51 && stats.bytesLeased == 0)
        #expect(stats.allocations == 2)               // the two announced blocks, alternating
    }

    @Test("concurrent workers over 5 sizes, handing buffers to each other, leave zero bytes leased and every block spare",
          arguments: [false, true])
    func concurrentWorkers(inArena: Bool) throws {
        // In an arena, every block is carved from one shared-memory region that grows as blocks are made.
        let arena = inArena ? try SharedMemory(name: "qg-test-arena", size: 0, reserve: 1 << 32) : nil
        let manager = BufferManager(sliceHighWater: 8, arena: arena)
        let sizes = [100, 4096, 65_000, 640 * 360 * 4, 1280 * 720 * 4]
        let workers = 4, rounds = 2000
        // Each worker passes every third buffer to the next worker, who releases it.
        let mailboxes = (0..<workers).map { _ in Mailbox() }
        let failures = Atomic<Int>(0)
        let threads = (0..<workers).map { w in
            Worker {
                let slice = manager.slice()
                var seed = UInt64(w + 1)
                for round in 0..<rounds {
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    let size = sizes[Int(seed >> 33) % sizes.count]
                    do {
                        let handle = try slice.lock(.bytes(size))
                        let bytes = try slice.bytes(handle)
                        if let arena, arena.offset(of: bytes.baseAddress!, count: size) == nil { failures.add(1, ordering: .relaxed) }
                        bytes[0] = UInt8(truncatingIfNeeded: round)
                        bytes[size - 1] = UInt8(truncatingIfNeeded: w)
                        try slice.emit(handle)
                        if round % 3 == 0 { mailboxes[(w + 1) % workers].post(handle) } else { try slice.release(handle) }
                        for received in mailboxes[w].takeAll() { try slice.release(received) }
                    } catch {
                        failures.add(1, ordering: .relaxed)
                    }
                }
                // The slice ends with its thread; its blocks go back to the manager.
            }
        }
        threads.forEach { $0.start() }
        let deadline = monotonicNanoseconds() + 120_000_000_000   // a hung worker fails the test instead of the run
        while threads.contains(where: { !$0.isFinished }) && monotonicNanoseconds() < deadline { usleep(1000) }
        let finished = threads.allSatisfy { $0.isFinished }
        try #require(finished)
        let cleanup = manager.slice()
        for mailbox in mailboxes { for handle in mailbox.takeAll() { try cleanup.release(handle) } }
        #expect(failures.load(ordering: .relaxed) == 0)
        let stats = manager.statistics
        #expect(stats.locks == workers * rounds)
        #expect(stats.releases == stats.locks)
        #expect(stats.bytesLeased == 0)
        #expect(manager.spareBlocks + cleanup.freeBlocks == stats.allocations)
        if let arena { #expect(arena.size >= stats.bytesAllocated && arena.size < stats.bytesAllocated + 64 * stats.allocations) }
    }
}

/// Handles one thread posts for another.
final class Mailbox: Sendable {
    private let handles = Locked<[BufferHandle]>([])
    func post(_ handle: BufferHandle) { handles.withLock { $0.append(handle) } }
    func takeAll() -> [BufferHandle] { handles.withLock { h in defer { h = [] }; return h } }
}

/// A thread that runs `body` and says when it is done.
final class Worker: @unchecked Sendable {
    private let body: @Sendable () -> Void
    private let done = Atomic<Bool>(false)
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    var isFinished: Bool { done.load(ordering: .acquiring) }
    func start() {
        let t = Thread { [self] in
            body()
            done.store(true, ordering: .releasing)
        }
        t.start()
    }
}
