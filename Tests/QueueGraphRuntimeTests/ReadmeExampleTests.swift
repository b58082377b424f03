import Foundation
import QueueGraphCore
import QueueGraphRuntime
import Testing

/// The README's library example, run as written: the text between the
/// markers below is the README's, character for character.
@Suite("README example")
struct ReadmeExampleTests {
    @Test("a config is a template: each graph made from it gets its own sink, and counts only its own buffers")
    func templateMakesOneSinkPerGraph() throws {
        // README begin
        let config = QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider,
                                processor: { _ in CountingSource(count: 1_000) },
                                creator: { _ in BufferPool(name: "frames", count: 64, payloadCapacity: 4096) }))
            .adding(QueueConfig(name: "out", size: 8, management: .headdrop, threading: .thread, outPads: 0,
                                processor: { _ in CountingSink() }))   // a factory: one sink per graph
            .connecting("src", to: "out")

        let graph = try config.createQueueGraph()   // a config is a template: create as many graphs as you like
        try graph.start()
        graph.waitUntilFinished()
        let stats = graph.stop()                    // drains; .abandon releases what is left
        print(stats.table())
        let sink = graph.processor(ofQueue: "out") as! CountingSink
        print("\(sink.buffers) buffers reached this graph's sink")
        // README end
        let other = try config.createQueueGraph()
        try other.start()
        other.waitUntilFinished()
        other.stop()
        let otherSink = other.processor(ofQueue: "out") as! CountingSink
        #expect(otherSink !== sink)
        #expect(sink.buffers + (stats[queue: "out"]?.dropped.values.reduce(0, +) ?? 0) == 1_000)
        #expect(otherSink.buffers <= 1_000 && sink.buffers <= 1_000)
        #expect(stats.ledgerProblems().isEmpty)

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let body = source.components(separatedBy: "// README begin\n")[1].components(separatedBy: "        // README end")[0]
        let dedented = body.split(separator: "\n", omittingEmptySubsequences: false).map { $0.dropFirst(8) }.joined(separator: "\n")
        #expect(readme.contains(dedented), "README.md's example differs from this test's")
    }
}
