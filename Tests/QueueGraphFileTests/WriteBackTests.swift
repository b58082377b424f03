import Foundation
import QueueGraphCore
import Testing
@testable import QueueGraphFile

@Suite("Writing graph files back out")
struct WriteBackTests {
    /// Every key set away from its default, with fractions everywhere a number may go.
    static let everything = """
        queues:
          - name: render
            processor: render
            parameters: {width: 320, height: 180, fps: 25, frames: 50, latency: 2.75, speed: 0.125}
            pool: {count: 5}
            threading: thread
          - name: julia
            processor: julia
            parameters: {iterations: 99, centre-x: -0.375, phase: 2.2}
            size: 3
            buffers: reuse
            threading: thread
            servers: 3
            loadbalancer: {mode: horizontal, damping: 0.35, boundary: [16, 4], resistance: 2.5, weights: [1, 0.5, 2.25]}
          - name: discs
            processor: discs
            size: 2
            buffers: reuse
            servers: 2
            loadbalancer: {mode: db, damping: 0.6, boundary: 0.05, resistance: 0.01}
          - name: drop
            processor: identity
            management: red
            red: {min: 1.5, max: 6.25, max-probability: 0.05, weight: 0.125, seed: 42}
            size: 8
            discipline: lifo
            byte-bound: 9999999
            threading: child
            restart: always
          - name: out
            processor: framesink
            sync: ack
        connections: [render -> julia, julia -> discs, discs -> drop, drop -> out]
        stats-interval-ms: 250
        residency-sample-interval: 4
        """

    /// `body` on this thread under `de_DE.UTF-8`, where C's printf writes 0,5 and strtod stops at a point.
    func underGermanNumbers(_ body: () throws -> Void) throws {
        // LC_NUMERIC_MASK is a macro Swift does not import: 1 << LC_NUMERIC.
        let german = try #require(newlocale(1 << LC_NUMERIC, "de_DE.UTF-8", nil), "de_DE.UTF-8 is not installed (Tools/setup generates it)")
        let previous = uselocale(german)
        defer {
            uselocale(previous)
            freelocale(german)
        }
        let printed = withVaList([0.5]) { args in
            var text = [CChar](repeating: 0, count: 16)
            vsnprintf(&text, text.count, "%.1f", args)
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        #expect(printed == "0,5", "the locale is not in effect")
        try body()
    }

    /// What a config holds, as text: every field of every queue, the parameters, the pools and the connections.
    func summary(_ file: GraphFile) -> [String] {
        zip(file.queues, file.config.queues).map { declared, q in
            "\(q.name) \(declared.processor) \(declared.parameters.values.sorted { $0.key < $1.key }) pool \(String(describing: declared.pool)) "
                + "size \(q.size) \(q.management) \(q.discipline) \(q.sync) \(q.threading) \(q.buffers) \(String(describing: q.byteBound)) "
                + "pads \(q.outPads) servers \(q.servers) \(q.loadBalancer) restart \(q.child.restart) network \(String(describing: declared.network))"
        } + file.networks.flatMap { network in
            network.nodes.map { "\(network.name): \($0.name) \($0.processor) \($0.parameters.values.sorted { $0.key < $1.key }) pulls \($0.inputs)" }
        } + file.config.connections.map { "\($0.from):\($0.pad) -> \($0.to)" }
          + ["\(file.config.residencySampleInterval) \(file.config.queueStatsIntervalNanoseconds)"]
    }

    @Test("written out and read again, every example and a file setting every key give the same graph, also under de_DE.UTF-8")
    func roundTrip() throws {
        let root = repositoryRoot.appendingPathComponent("Graphs")
        var files = try GraphFileTests.examples.sorted().map { try GraphFile.load(path: root.appendingPathComponent($0).path, registry: everyProcessor) }
        files.append(try GraphFile(yaml: Self.everything, file: "everything.yaml", registry: everyProcessor))
        try underGermanNumbers {
            for file in files {
                let written = file.yaml()
                let again = try GraphFile(yaml: written, file: file.file, registry: everyProcessor)
                #expect(summary(again) == summary(file), "\(file.file)")
                #expect(again.yaml() == written, "\(file.file): writing is not a fixed point")
            }
        }
        // The parser read every key of the fixture (both sides of the round trip come from it).
        let config = files.last!.config
        #expect(config.residencySampleInterval == 4 && config.queueStatsIntervalNanoseconds == 250_000_000)
        let drop = config.queues[3]
        #expect(drop.management == .red(RED(minThreshold: 1.5, maxThreshold: 6.25, maxProbability: 0.05, weight: 0.125, seed: 42)))
        #expect(drop.discipline == .lifo && drop.byteBound == 9_999_999 && drop.size == 8 && config.queues[4].sync == .ack)
        #expect(drop.threading == .child && drop.child.restart == .always)
        #expect(files.last!.queues[0].parameters.values["latency"] == .number(2.75) && files.last!.queues[0].pool?.count == 5)
        let everything = config.queues
        #expect(everything[1].loadBalancer == LoadBalancerConfig(mode: .horizontal, damping: 0.35, boundary: .init(x: 16, y: 4),
                                                                  resistance: 2.5, weights: [1, 0.5, 2.25]))
        #expect(everything[2].loadBalancer.boundary.x == 0.05 && everything[2].loadBalancer.mode == SplitMode.db)
    }
}
