// A three-stage pipeline across two thread boundaries: a source makes 1 KiB
#if canImport(Glibc)
import Glibc
#endif
// buffers from a pool, a `thread` queue checksums them, a second `thread`
// queue (headdrop, like live video) sinks them. Prints progress and the
// per-queue statistics, and checks the ledger.
import QueueGraphCore
import QueueGraphRuntime

/// Fills each buffer with a pattern derived from its sequence number.
final class PatternSource: BufferSource, @unchecked Sendable {
    let count: Int
    var sent = 0
    init(count: Int) { self.count = count }

    func produce(context: ProcessContext) -> ProduceResult {
        guard sent < count else { return .endOfStream }
        guard let buffer = context.acquireBuffer(size: 1024) else { return .waitingForBuffer }
        buffer.sequence = UInt64(sent)
        let words = buffer.bytes.bindMemory(to: UInt64.self)
        for i in words.indices { words[i] = UInt64(sent) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i) }
        if context.sendTo(0, buffer) == .full { context.doneBuffer(buffer); return .produced }
        sent += 1
        return .produced
    }
}

/// Adds a checksum of the payload in place (`reuse`) and forwards it.
final class Checksum: BufferProcessor {
    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        var sum: UInt64 = 0
        for word in buffer.bytes.bindMemory(to: UInt64.self) { sum = sum &* 31 &+ word }
        buffer.timestamp = sum
        if context.sendTo(0, buffer) == .full { context.doneBuffer(buffer) }
        return .ok
    }
}

let count = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 2_000_000
let sink = CountingSink()
let config = QueueGraphConfig()
    .adding(QueueConfig(name: "source", buffers: .provider, processor: { _ in PatternSource(count: count) },
                        creator: { q in BufferPool(name: "frames", count: 256, payloadCapacity: 1024) }))
    .adding(QueueConfig(name: "checksum", size: 64, threading: .thread, buffers: .reuse, processor: { _ in Checksum() }))
    .adding(QueueConfig(name: "display", size: 8, management: .headdrop, threading: .thread, outPads: 0,
                        processor: { _ in sink }))
    .connecting("source", to: "checksum")
    .connecting("checksum", to: "display")

let graph = try config.createQueueGraph()
let started = monotonicNanoseconds()
try graph.start()
while !graph.waitUntilFinished(timeoutNanoseconds: 500_000_000) {
    let s = graph.statistics()
    print("  \(s[queue: "display"]!.popped) of \(count) buffers at the sink…")
}
let stats = graph.stop()
let seconds = Double(monotonicNanoseconds() - started) / 1e9

print(stats.table(), terminator: "")
print("\(sink.buffers) buffers reached the sink in \(String(Int(seconds * 1000))) ms (\(Int(Double(count) / seconds)) buffers/s)")
let problems = stats.ledgerProblems()
print(problems.isEmpty ? "ledger balanced" : "ledger problems:\n" + problems.joined(separator: "\n"))
if !problems.isEmpty { exit(1) }
