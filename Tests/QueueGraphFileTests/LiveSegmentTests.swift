import Foundation
import QueueGraphCore
import QueueGraphFile
import QueueGraphRuntime
import Testing

@Suite("live segments in the animation")
struct LiveSegmentTests {
    @Test("the running animation's blur is replaced by another filter and back, 20 times: every frame delivered or dropped and counted, none lost")
    func swapBlur() throws {
        // The main demo, smaller (a debug build keeps up) and into a frame sink.
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Graphs/animation.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "width: 640, height: 360, fps: 60, frames: 600", with: "width: 96, height: 54, fps: 60, frames: 300")
            .replacingOccurrences(of: "processor: y4msink", with: "processor: framesink")
            .replacingOccurrences(of: "parameters: {path: /tmp/qgraph-animation.y4m}", with: "")
        let file = try GraphFile(yaml: text, file: "animation.yaml", registry: everyProcessor)
        let graph = try file.config.createQueueGraph()
        try graph.start()
        var current = "blur"
        var reports: [SpliceReport] = []
        for swap in 1...20 {
            let line = swap % 2 == 1 ? "gaussianblur sigma=1.5 name=soft" : "boxblur radius=3 name=blur"
            let segment = try GraphFile.segment(launch: line, registry: everyProcessor)
            reports.append(try graph.replaceSegment([current], with: segment))
            current = segment[0].name
            usleep(100_000)
        }
        #expect(current == "blur")
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(reports.allSatisfy { $0.abandoned == 0 }, "every replaced filter drained its frames downstream")
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        let frames = try #require(stats.pools.first { $0.name == "render" })
        #expect(frames.abandoned == 0 && frames.acquired == frames.consumed + frames.dropped, "no frame lost: \(frames)")
        #expect((stats.queues.first { $0.name == "output" }?.popped ?? 0) > 0)
        #expect(stats.queues.filter { $0.name.hasPrefix("blur~") || $0.name.hasPrefix("soft~") }.count == 20)
    }

    @Test("a segment's launch line is checked as any launch line, at the segment's own columns")
    func segmentErrors() {
        #expect(throws: GraphFileErrors.self) { try GraphFile.segment(launch: "gaussianblur sigma=0", registry: everyProcessor) }
        do {
            _ = try GraphFile.segment(launch: "gaussianblur sigma=0", registry: everyProcessor)
        } catch {
            #expect(error.description == "<launch>:1:20: error: found '0' for gaussianblur parameter 'sigma', expected a number in 0.1…64")
        }
        #expect((try? GraphFile.segment(launch: "boxblur radius=2 ! queue size=3 ! colormatrix", registry: everyProcessor).map(\.size)) == [64, 3])
    }
}
