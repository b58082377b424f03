@_spi(Runtime) import QueueGraphCore
#if canImport(Glibc)
import Glibc
#endif

/// The child process of a `threading: .child` queue: a program that
/// embeds QueueGraph checks its arguments first and, when the runtime
/// started it as a child, runs the part of the same graph it is given:
///
///     if let request = ChildProgram.request(in: CommandLine.arguments) {
///         exit(ChildProgram.run(config: makeConfig(), queue: request.queue, channel: request.channel))
///     }
///
/// `qgraph child FILE` does this for graph files. Threading: the process's
/// main thread; it blocks until the parent's stream has ended.
public enum ChildProgram {
    /// The `child` queue and the channel, when `arguments` hold
    /// `--qg-child QUEUE CHANNEL` (what `QueueGraph` appends when it spawns a child).
    public static func request(in arguments: [String]) -> (queue: String, channel: String)? {
        guard let i = arguments.firstIndex(of: "--qg-child"), i + 2 < arguments.count else { return nil }
        return (arguments[i + 1], arguments[i + 2])
    }

    /// Runs the part of `config` that follows `child` queue `queue`, fed
    /// by the parent through `channel`, until the parent's stream ends; then
    /// returns the exit status (0, or 70 with the reason on stderr). The
    /// child publishes its queues' counters for the parent's statistics
    /// every `publishIntervalNanoseconds`.
    public static func run(config: QueueGraphConfig, queue: String, channel: String,
                           publishIntervalNanoseconds: Int64 = 20_000_000) -> Int32 {
        // Ctrl-C reaches the whole process group: the parent drains, and the
        // child ends when the parent's stream does.
        signal(SIGINT, SIG_IGN)
        do {
            let side = try ChildSide(config: config, queue: queue, channel: channel)
            let graph = try side.config.createQueueGraph()
            try graph.start()
            while !graph.waitUntilFinished(timeoutNanoseconds: publishIntervalNanoseconds) {
                side.publish(graph.statistics())
            }
            side.publish(graph.stop())
            side.finish()
            return 0
        } catch {
            writeStandardError("qgraph child of queue '\(queue)': \(error)\n")
            return 70
        }
    }
}
