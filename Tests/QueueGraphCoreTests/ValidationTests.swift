import Testing
@testable import QueueGraphCore

private func q(_ name: String, size: Int = 4, management: QueueManagement = .default, buffers: BufferManagement = .forward,
               threading: QueueThreading = .none, outPads: Int = 1, creator: BufferCreatorFactory? = nil) -> QueueConfig {
    QueueConfig(name: name, size: size, management: management, threading: threading, buffers: buffers, outPads: outPads,
                processor: { _ in Forwarder() }, creator: creator)
}

private func errors(_ config: QueueGraphConfig) -> [ConfigError] {
    do {
        try config.validate()
        return []
    } catch {
        return error.errors
    }
}

@Suite("Config validation")
struct ValidationTests {
    @Test("a valid chain validates and plans its threads")
    func valid() throws {
        let plan = try QueueGraphConfig(queues: [q("a"), q("b", threading: .thread), q("c", outPads: 0)],
                                        connections: [.init(from: "a", to: "b"), .init(from: "b", to: "c")]).validate()
        #expect(plan.group == [0, 1, 1])
        #expect(plan.groupCount == 2)
    }

    @Test("bad configs name the queue and field", arguments: [
        (QueueGraphConfig(queues: [q("a", outPads: 0), q("a", outPads: 0)]), ConfigError.Code.duplicateName, "a", "name"),
        (QueueGraphConfig(queues: [q("a")], connections: [.init(from: "a", to: "zz")]), .unknownQueue, "zz", "connections"),
        (QueueGraphConfig(queues: [q("a"), q("b", outPads: 0)], connections: [.init(from: "a", pad: 3, to: "b"), .init(from: "a", to: "b")]),
         .unknownPad, "a", "connections"),
        (QueueGraphConfig(queues: [q("a"), q("b", outPads: 0)], connections: [.init(from: "a", to: "b"), .init(from: "a", to: "b")]),
         .duplicateConnection, "a", "connections"),
        (QueueGraphConfig(queues: [q("a", size: 0, outPads: 0)]), .invalidSize, "a", "size"),
        (QueueGraphConfig(queues: [q("a", management: .red(RED(minThreshold: 3, maxThreshold: 2)), outPads: 0)]),
         .invalidRED, "a", "management.red"),
        (QueueGraphConfig(queues: [q("a", buffers: .provider, outPads: 0)]), .missingCreator, "a", "creator"),
        (QueueGraphConfig(queues: [q("a"), q("b", buffers: .upstream, outPads: 0)], connections: [.init(from: "a", to: "b")]),
         .unsatisfiedBuffers, "b", "buffers"),
        (QueueGraphConfig(queues: [q("a")]), .unconnectedPad, "a", "outPads"),
        (QueueGraphConfig(queues: [q("a", management: .taildrop), q("b", management: .taildrop)],
                          connections: [.init(from: "a", to: "b"), .init(from: "b", to: "a")]), .cycleWithoutExit, "a", "connections"),
    ])
    func rejected(config: QueueGraphConfig, code: ConfigError.Code, queue: String, field: String) {
        let found = errors(config)
        #expect(found.contains { $0.code == code && $0.queue == queue && $0.field == field }, "\(found)")
    }

    @Test("a cycle of default queues can deadlock and is rejected; one dropping queue makes it safe")
    func defaultCycle() {
        let exit = q("x", outPads: 0)
        var a = q("a", outPads: 2)
        let cycle = QueueGraphConfig(queues: [a, q("b"), exit],
                                     connections: [.init(from: "a", pad: 0, to: "b"), .init(from: "b", to: "a"), .init(from: "a", pad: 1, to: "x")])
        #expect(errors(cycle).map(\.code) == [.deadlockingCycle])
        #expect(errors(cycle).first?.field == "management")
        a.management = .taildrop
        var safe = cycle
        safe.queues[0] = a
        #expect(errors(safe).isEmpty)
    }

    @Test("several problems are all reported")
    func several() {
        let config = QueueGraphConfig(queues: [q("a", size: 0, outPads: 0), q("b", size: -1, buffers: .provider, outPads: 0)])
        #expect(Set(errors(config).map(\.code)) == [.invalidSize, .missingCreator])
        #expect(errors(config).count == 3)
    }

    @Test("a source whose buffers come from nowhere is rejected when the graph is built")
    func sourceWithoutBuffers() {
        let config = QueueGraphConfig(queues: [QueueConfig(name: "src", outPads: 0, processor: { _ in CountingSource(count: 1) })])
        #expect(throws: ConfigErrors.self) { try config.createSteppedGraph() }
    }
}
