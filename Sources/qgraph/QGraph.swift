import ArgumentParser
import Foundation
import QueueGraphCore
import QueueGraphFile
import QueueGraphMedia
import QueueGraphRemote
import QueueGraphRuntime

/// Exit codes (documented in `qgraph --help` and docs/graph-format.md).
enum Exit {
    /// The graph file (or launch line) is invalid.
    static let invalidGraph = ExitCode(65)
    /// The graph could not start, lost track of a buffer, or a processor failed.
    static let runtimeFailure = ExitCode(70)
}

@main
struct QGraph: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qgraph",
        abstract: "Run, check and draw QueueGraph graph files.",
        discussion: """
            Exit codes: 0 success (also after Ctrl-C, which drains the graph and prints its statistics); \
            64 bad command line; 65 invalid graph file or launch line; 70 runtime failure (the graph could \
            not start, a processor failed, or the ledger did not balance).
            """,
        subcommands: [Run.self, Launch.self, Validate.self, Inspect.self, Format.self, Dot.self, Processors.self, Schema.self,
                      Ls.self, Top.self, Dump.self, Ctl.self, Worker.self, Child.self]
    )
}

/// Every processor qgraph knows: the core's, the render engine's, the GL owner's and the media ones.
let processors = {
    var registry = ProcessorRegistry.withRenderAndGL
    registry.registerMedia()
    return registry
}()

/// Creates (not starts) the graph to settle its link formats: the format of
/// each queue's out pads, or what creating it refused (a link, a media file
/// that does not open), located in the file. Nil for graphs with child
/// processes or remote hosts (creating those would start their children or
/// need the key).
func created(_ graph: GraphFile) -> Result<[[LinkFormat]], GraphFileErrors>? {
    guard !graph.config.queues.contains(where: { $0.threading == .child || $0.threading == .remote }) else { return nil }
    do {
        return .success(try graph.config.createQueueGraph().engine.linkFormats)
    } catch let errors as ConfigErrors {
        return .failure(graph.locate(errors))
    } catch {
        return .failure(GraphFileErrors([GraphFileError(SourceLocation(file: graph.file, line: 1, column: 1), "\(error)")]))
    }
}

/// The link formats for `inspect` and `dot`; nil, with the reason on standard error, when they are not known.
func linkFormats(_ graph: GraphFile) -> [[LinkFormat]]? {
    switch created(graph) {
    case .success(let formats)?: return formats
    case .failure(let errors)?:
        printError("link formats are not known:\n\(errors)")
        return nil
    case nil: return nil
    }
}

/// Loads a graph file, or prints its errors and exits with `Exit.invalidGraph`.
func loadGraph(_ path: String) throws -> GraphFile {
    do {
        return try GraphFile.load(path: path, registry: processors)
    } catch {
        report(error)
        throw Exit.invalidGraph
    }
}

/// Loads a graph file to run: one with `remote` queues gets its transport,
/// the key from `key` (else $QG_KEY_FILE) and the file's text and path to
/// send the workers.
func loadGraphToRun(_ path: String, key: String?) throws -> GraphFile {
    var graph = try loadGraph(path)
    if graph.config.queues.contains(where: { $0.threading == .remote }) {
        guard let keyFile = key ?? ProcessInfo.processInfo.environment["QG_KEY_FILE"] else {
            printError("\(path): the graph runs parts on other hosts: give the workers' key with --key FILE (or QG_KEY_FILE)")
            throw ExitCode(64)
        }
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            graph.config.remoteLinks = RemoteHosts(key: try SharedKey(file: keyFile),
                                                   file: (text, URL(fileURLWithPath: path).standardizedFileURL.path))
        } catch {
            printError("\(error)")
            throw ExitCode(64)
        }
    }
    return graph
}

func report(_ errors: GraphFileErrors) {
    var text = errors.description + "\n"
    text += "\(errors.errors.count) error\(errors.errors.count == 1 ? "" : "s")\n"
    FileHandle.standardError.write(Data(text.utf8))
}

func printError(_ text: String) { FileHandle.standardError.write(Data("qgraph: \(text)\n".utf8)) }

/// Options shared by `run` and `launch`.
struct RunOptions: ParsableArguments {
    @Option(help: "Stop (draining) after this many seconds.")
    var duration: Double?

    @Option(help: "Seconds a stop may spend draining before the rest is released as abandoned.")
    var drainTimeout: Double = 5

    @Flag(help: "Print the final statistics as JSON instead of a table.")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Open no control endpoint (qgraph ls, top and dump then do not see the graph).")
    var noControl = false

    @Option(help: ArgumentHelp("Serve a live page of the graph on this port (0: any free one; the address is printed).", valueName: "port"))
    var serve: Int?

    @Option(help: "The address the live page listens on: loopback unless told otherwise (0.0.0.0: every interface).")
    var serveAddress = "127.0.0.1"

    @Option(help: ArgumentHelp("The key file shared with the workers of the graph's hosts (else $QG_KEY_FILE).", valueName: "file"))
    var key: String?
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a graph file until end-of-stream, --duration or Ctrl-C; print per-queue statistics.")

    @Argument(help: "The graph file (YAML).")
    var file: String

    @OptionGroup var options: RunOptions

    func run() throws { try Runner(file: try loadGraphToRun(file, key: options.key), options: options).run() }
}

struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a one-line pipeline: 'testsrc count=100 ! queue size=4 management=headdrop ! nullsink'.")

    @Argument(help: "The pipeline; quote it for the shell.")
    var pipeline: [String]

    @OptionGroup var options: RunOptions

    func run() throws {
        let graph: GraphFile
        do {
            graph = try GraphFile(launch: pipeline.joined(separator: " "), registry: processors)
        } catch {
            report(error)
            throw Exit.invalidGraph
        }
        try Runner(file: graph, options: options).run()
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check graph files; list every error.")

    @Argument(help: "Graph files.")
    var files: [String]

    func run() throws {
        var failed = false
        for path in files {
            do {
                let graph = try GraphFile.load(path: path, registry: processors)
                if case .failure(let errors)? = created(graph) {
                    report(errors)
                    failed = true
                    continue
                }
                let (q, c) = (graph.config.queues.count, graph.config.connections.count)
                print("\(path): ok (\(q) queue\(q == 1 ? "" : "s"), \(c) connection\(c == 1 ? "" : "s"))")
            } catch {
                report(error)
                failed = true
            }
        }
        if failed { throw Exit.invalidGraph }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the resolved graph: threads, which queue runs where, where buffers come from, pools against queue depths.")

    @Argument(help: "The graph file.")
    var file: String

    func run() throws {
        let graph = try loadGraph(file)
        print(graph.inspection(formats: linkFormats(graph)), terminator: "")
    }
}

struct Format: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the graph file as QueueGraph reads it, every key written out (defaults included); reading the output gives the same graph.")

    @Argument(help: "The graph file.")
    var file: String

    func run() throws { print(try loadGraph(file).yaml(), terminator: "") }
}

struct Dot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the graph in Graphviz DOT (policies, threads by colour); --svg/--png render it with 'dot'.")

    @Argument(help: "The graph file.")
    var file: String

    @Option(help: "Write an SVG rendering here (needs the 'dot' program).")
    var svg: String?

    @Option(help: "Write a PNG rendering here (needs the 'dot' program).")
    var png: String?

    func run() throws {
        let graph = try loadGraph(file)
        let text = graph.dot(formats: linkFormats(graph))
        let renderings = [("svg", svg), ("png", png)].compactMap { format, path in path.map { (format, $0) } }
        if renderings.isEmpty {
            print(text, terminator: "")
            return
        }
        guard let dot = ProcessInfo.processInfo.environment["PATH", default: "/usr/bin"].split(separator: ":")
            .map({ "\($0)/dot" }).first(where: FileManager.default.isExecutableFile) else {
            printError("the 'dot' program is not installed (Debian: apt-get install graphviz); without --svg/--png the DOT text is printed")
            throw Exit.runtimeFailure
        }
        for (format, path) in renderings {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: dot)
            process.arguments = ["-T\(format)", "-o", path]
            let input = Pipe()
            process.standardInput = input
            try process.run()
            input.fileHandleForWriting.write(Data(text.utf8))
            try input.fileHandleForWriting.close()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                printError("dot -T\(format) failed with status \(process.terminationStatus)")
                throw Exit.runtimeFailure
            }
            print("wrote \(path)")
        }
    }
}

struct Processors: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the processors graph files can use, with their parameters.")

    func run() {
        for name in processors.names {
            let spec = processors[name]!
            let pads = spec.outputs.lowerBound == spec.outputs.upperBound ? "\(spec.outputs.lowerBound)" : "\(spec.outputs.lowerBound)–\(spec.outputs.upperBound)"
            let kinds = (spec.isSource ? "" : "takes \(spec.takes), ") + (spec.outputs.upperBound == 0 ? "" : "makes \(spec.makes.map { "\($0)" } ?? "what it takes"); ")
            print("\(name)\(spec.isSource ? " (source)" : ""): \(spec.summary); \(kinds)out pads: \(pads)")
            for p in spec.parameters {
                print("    \(p.name): \(p.kind.expectation)\(p.defaultValue.map { ", default \($0)" } ?? ", required")\(p.live ? ", live" : "") — \(p.summary)")
            }
        }
    }
}

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the JSON Schema of graph files (docs/graph.schema.json).")

    func run() { print(processors.jsonSchema(), terminator: "") }
}

/// The child process of a `threading: child` queue: qgraph starts itself
/// with `child FILE --qg-child QUEUE CHANNEL` and runs that queue's part.
struct Child: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the part of a graph behind a 'threading: child' queue (qgraph starts this itself).",
        shouldDisplay: false)

    @Argument(help: "The graph file.")
    var file: String

    @Argument(parsing: .captureForPassthrough, help: "--qg-child QUEUE CHANNEL")
    var request: [String] = []

    func run() throws {
        guard let request = ChildProgram.request(in: request) else {
            printError("child: expected --qg-child QUEUE CHANNEL after the graph file")
            throw ExitCode(64)
        }
        let graph = try loadGraph(file)
        // Under Tools/trace-record, join the parent's LTTng session before any event.
        if let session = ProcessInfo.processInfo.environment["QG_LTTNG_SESSION"] {
            let track = Process()
            track.executableURL = URL(fileURLWithPath: "/usr/bin/lttng")
            track.arguments = ["track", "-u", "-s", session, "--vpid=\(getpid())"]
            track.standardOutput = FileHandle.nullDevice
            try? track.run()
            track.waitUntilExit()
        }
        let status = ChildProgram.run(config: graph.config, queue: request.queue, channel: request.channel)
        if status != 0 { throw ExitCode(status) }
    }
}

/// The worker daemon of a host: runs the parts of graphs that coordinators
/// (`qgraph run` of a graph with `remote` queues) send it, for those that
/// prove the shared key.
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run graph parts for coordinators on other hosts (threading: remote), over UCX.",
        discussion: """
            Listens on ADDR:PORT only (UCX's TCP or RDMA transports, as UCX_TLS allows). A coordinator must \
            prove the key in FILE (the same file as its --key) before any graph is accepted; others are \
            refused and logged on standard error. Files a graph names are read at the same paths on this host. \
            Stops on SIGINT or SIGTERM, abandoning the parts it runs.
            """)

    @Option(help: ArgumentHelp("The address and port to listen on (an IPv4 or IPv6 address: 10.0.0.2:7700, [fd00::2]:7700).", valueName: "addr:port"))
    var listen: String

    @Option(help: ArgumentHelp("The shared key file (at least 16 bytes; make one with: head -c 32 /dev/urandom | base64 > FILE).", valueName: "file"))
    var key: String

    func run() throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else {
            printError("worker: found --listen '\(listen)', expected ADDR:PORT (like 10.0.0.2:7700)")
            throw ExitCode(64)
        }
        let address = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_BLOCK, &set, nil)   // taken by sigwait below; threads started after this inherit the mask
        let worker: RemoteWorker
        do {
            worker = try RemoteWorker(address: address, port: port, key: try SharedKey(file: key), log: { line in
                FileHandle.standardError.write(Data("qgraph worker: \(line)\n".utf8))
            }, makeConfig: { text, path in try GraphFile(yaml: text, file: path, registry: processors).config })
        } catch {
            printError("worker: \(error)")
            throw Exit.runtimeFailure
        }
        var number: Int32 = 0
        sigwait(&set, &number)
        FileHandle.standardError.write(Data("qgraph worker: stopping (signal \(number))\n".utf8))
        worker.stop()
    }
}
