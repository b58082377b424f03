import ArgumentParser
import Foundation
import QueueGraphControl
import Synchronization

/// Connects to a running graph's control endpoint: the one named (its
/// graph name or pid), or the only one running.
func connectToGraph(_ wanted: String?) throws -> ControlClient {
    let running = ControlDirectory.entries()
    let matching = wanted.map { w in running.filter { $0.graph == w || "\($0.pid)" == w } } ?? running
    guard let entry = matching.first else {
        let listed = running.map { "\($0.graph) (pid \($0.pid))" }.joined(separator: ", ")
        printError(wanted.map { "found no running graph named or numbered '\($0)'" } ?? "found no running graph"
            + (running.isEmpty ? " in \(ControlDirectory.path)" : ", expected one of: \(listed)"))
        throw ExitCode(1)
    }
    guard matching.count == 1 else {
        printError("found \(matching.count) running graphs, expected one: name one of " + matching.map { "\($0.graph) (pid \($0.pid))" }.joined(separator: ", "))
        throw ExitCode(64)
    }
    do {
        return try ControlClient(path: entry.path)
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

/// The result of `command`, or the endpoint's refusal printed and exit 1.
func call(_ client: ControlClient, _ command: String, arguments: [String: String] = [:]) throws -> Any {
    do { return try client.call(command, arguments: arguments) } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

/// Prints a JSON value.
func printJSON(_ value: Any) {
    let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    print(String(decoding: data, as: UTF8.self))
}

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the running graphs (their control endpoints, in \(ControlDirectory.path)).")

    func run() throws {
        let now = Date().timeIntervalSince1970
        print("GRAPH                 PID    UPTIME  SOCKET")
        for entry in ControlDirectory.entries() {
            let uptime = (try? ControlClient(path: entry.path, timeout: 1)).flatMap { $0.hello["started"] as? Double }
                .map { String(format: "%7.1f s", now - $0) } ?? "(no answer)"
            print("\(entry.graph.padding(toLength: 18, withPad: " ", startingAt: 0)) \(String(format: "%6d", entry.pid))  \(uptime)  \(entry.path)")
        }
    }
}

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a running graph's queues, policies, connections and statistics now, as JSON (like pw-dump).")

    @Argument(help: "The graph's name or pid (default: the only one running).")
    var graph: String?

    func run() throws {
        printJSON(try call(try connectToGraph(graph), "dump"))
    }
}

/// Ctrl-C in `qgraph top`: ends the loop, which restores the terminal.
private let topInterrupted = Atomic<Bool>(false)

struct Top: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch a running graph live, like pw-top: per queue depth, rates, drops, residency and misses; threads; pools.",
        discussion: "Keys: q quits; o, i, d, r, n sort the queues by out/s, in/s, depth, drops, name.")

    @Argument(help: "The graph's name or pid (default: the only one running).")
    var graph: String?

    @Option(name: .shortAndLong, help: "Seconds between refreshes.")
    var delay: Double = 1

    @Flag(name: .short, help: "Batch mode: plain text, one screen after the other (for scripts).")
    var batch = false

    @Option(name: .customShort("n"), help: "Stop after this many refreshes (default: until q or Ctrl-C).")
    var iterations: Int?

    @Option(help: "Sort the queues by: \(TopView.Sort.allCases.map(\.rawValue).joined(separator: ", ")).")
    var sort: String = "out"

    func validate() throws {
        guard delay >= 0.05 else { throw ValidationError("found -d \(delay), expected at least 0.05 seconds") }
        guard TopView.Sort(rawValue: sort) != nil else {
            throw ValidationError("found --sort \(sort), expected one of \(TopView.Sort.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let client = try connectToGraph(graph)
        let interactive = !batch && isatty(STDOUT_FILENO) != 0
        let terminal = interactive ? RawTerminal() : nil
        defer { terminal?.restore() }
        signal(SIGINT) { _ in topInterrupted.store(true, ordering: .relaxed) }
        do {
            var view = TopView(dump: try client.call("dump") as? [String: Any] ?? [:], sort: TopView.Sort(rawValue: sort)!)
            var shown = 0
            while !topInterrupted.load(ordering: .relaxed) {
                let stats = try client.call("stats") as? [String: Any] ?? [:]
                let screen = view.render(stats, at: Date().timeIntervalSince1970)
                print(interactive ? "\u{1B}[H\u{1B}[2J" + screen : screen, terminator: batch ? "\n" : "")
                fflush(nil)
                shown += 1
                if let iterations, shown >= iterations { break }
                if let key = terminal?.key(within: delay) ?? sleepThrough(delay) {
                    if key == "q" { break }
                    if let order = ["o": TopView.Sort.out, "i": .in, "d": .depth, "r": .drops, "n": .name][key] { view.sort = order }
                }
            }
        } catch {
            terminal?.restore()
            printError("\(error)")
            throw ExitCode(1)
        }
    }

    private func sleepThrough(_ seconds: Double) -> Character? {
        usleep(useconds_t(seconds * 1e6))
        return nil
    }
}

/// Standard input unbuffered and unechoed while `top` runs, so that one key acts at once.
private final class RawTerminal {
    private var saved = termios()

    init() {
        tcgetattr(STDIN_FILENO, &saved)
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }

    /// A key pressed within `seconds`, or nil.
    func key(within seconds: Double) -> Character? {
        var entry = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, Int32(seconds * 1000)) > 0 else { return nil }
        var byte: UInt8 = 0
        return read(STDIN_FILENO, &byte, 1) == 1 ? Character(UnicodeScalar(byte)) : nil
    }

    func restore() { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
}

struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change a running graph: a processor's parameter, a queue's size and management, pausing a branch, replacing a segment.",
        discussion: """
            qgraph ctl set blur radius=6             a live parameter (checked as in graph files)
            qgraph ctl pause plasma                  pause a queue and the branch it feeds
            qgraph ctl resume plasma
            qgraph ctl queue blur size=8 management=red red-min=2 red-max=6 red-probability=0.2
            qgraph ctl replace blur gaussianblur sigma=2 name=soft    a segment (a chain: a,b) for a launch line
            qgraph ctl insert plasma colormatrix preset=sepia          after a queue (--pad N)
            qgraph ctl remove soft
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable { case set, pause, resume, queue, replace, insert, remove }

    @Option(name: .shortAndLong, help: "The graph's name or pid (default: the only one running).")
    var graph: String?

    @Argument(help: "What to do: \(Action.allCases.map(\.rawValue).joined(separator: ", ")).")
    var action: Action

    @Argument(help: "The queue (replace, remove: the segment's queues, separated by commas; insert: the queue to insert after).")
    var queue: String

    @Argument(help: "NAME=VALUE settings: parameters for set; size, management, red-min, red-max, red-probability for queue. The launch line for replace and insert.")
    var settings: [String] = []

    @Option(help: "insert: the out pad of the queue to insert after.")
    var pad = 0

    func validate() throws {
        switch action {
        case .replace, .insert:
            guard !settings.isEmpty else { throw ValidationError("found no launch line after '\(queue)', expected one like: gaussianblur sigma=2") }
            return
        case .remove:
            guard settings.isEmpty else { throw ValidationError("found more after 'remove \(queue)', expected only the segment's queues") }
            return
        default: break
        }
        let pairs = settings.filter { $0.contains("=") }
        guard pairs.count == settings.count else { throw ValidationError("found '\(settings.first { !$0.contains("=") }!)', expected NAME=VALUE") }
        switch action {
        case .set where settings.isEmpty: throw ValidationError("found no PARAMETER=VALUE after the queue, expected one or more")
        case .queue where settings.isEmpty: throw ValidationError("found no setting after the queue, expected size=N or management=NAME")
        case .pause where !settings.isEmpty, .resume where !settings.isEmpty:
            throw ValidationError("found settings after '\(action.rawValue) \(queue)', expected none")
        default: break
        }
    }

    func run() throws {
        let client = try connectToGraph(graph)
        let json = ControlProtocol.json
        let names = json(queue.split(separator: ",").map(String.init))
        let line = json(settings.joined(separator: " "))
        let pairs = settings.map { setting in (String(setting.prefix { $0 != "=" }), json(String(setting.drop { $0 != "=" }.dropFirst()))) }
        // One request per parameter for set; one with every setting otherwise.
        let requests: [[String: String]] = switch action {
        case .set: pairs.map { ["queue": json(queue), "parameter": json($0.0), "value": $0.1] }
        case .replace: [["queues": names, "with": line]]
        case .remove: [["queues": names]]
        case .insert: [["after": json(queue), "pad": "\(pad)", "with": line]]
        case .pause, .resume, .queue: [["queue": json(queue)].merging(pairs) { _, new in new }]
        }
        for arguments in requests { print(json(try call(client, action.rawValue, arguments: arguments))) }
    }
}
