import CUCX
@_spi(Runtime) import QueueGraphCore
import QueueGraphRuntime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An endpoint: one connection to a peer (UCX's `ucp_ep_h`).
public typealias Endpoint = OpaquePointer

/// What a node's owner does with what arrives; all run on the node's progress thread.
protocol UCXNodeDelegate: AnyObject, Sendable {
    /// A message arrived on `endpoint` (nil when the sender did not ask for
    /// replies). `data` holds the bytes when `rendezvous` is false (valid
    /// only during the call); otherwise it is a descriptor for `receive`.
    func arrived(_ id: WireID, from endpoint: Endpoint?, header: UnsafeRawBufferPointer,
                 data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool)
    /// `endpoint` failed: its peer ended, the network went down, or connecting failed.
    func failed(_ endpoint: Endpoint, status: Int32)
    /// A client asks to connect from `peer` ("ADDR:PORT"); accept or reject `request`.
    func connecting(_ request: UnsafeMutableRawPointer, peer: String)
    /// Every `tickNanoseconds` (keepalives, statistics, deadlines).
    /// `stalled`: how late this tick is, beyond a tick: time this thread did
    /// not run (a starved machine), in which it could not hear its peers
    /// either, so silence checks leave it out.
    func tick(now: UInt64, stalled: UInt64)
}

/// One UCX context and worker (multi-threaded: any thread may send) with
/// the thread that progresses it: it sleeps on the worker's event fd, runs
/// the delegate's callbacks, tasks posted to it, and a periodic tick.
///
/// Threading: `send` and `post` from any thread; the delegate's callbacks
/// and posted tasks on the progress thread; `stop` from any other thread.
final class UCXNode: @unchecked Sendable {
    let raw: OpaquePointer
    private weak var delegate: (any UCXNodeDelegate)?
    private let tickNanoseconds: UInt64
    private var thread: pthread_t?
    private let stopping = Atomic<Bool>(false)
    /// Set while the progress thread sleeps in poll: a send then wakes it.
    private let sleeping = Atomic<Bool>(false)
    private let wakeFD: Int32
    private let tasks = Locked<[() -> Void]>([])
    /// Empty progress calls (each after a `sched_yield`) before the thread
    /// sleeps: 8 took 4 KiB buffers from 47 000 to 100 000 per second between
    /// namespaces on 2 cores (Tools/bench remote); more starve the other
    /// threads of 1 MiB frames.
    static let spinsBeforeSleep = 8

    /// `toward`: the address of the peer (or, for a worker, its own): UCX
    /// then uses the interface the kernel routes it by, unless
    /// `UCX_NET_DEVICES` says otherwise. (UCX would otherwise offer the
    /// peer every interface, and a peer may try one it cannot reach.)
    init(delegate: any UCXNodeDelegate, tickNanoseconds: UInt64, toward address: String? = nil) throws {
        var error = [CChar](repeating: 0, count: 256)
        var device = [CChar](repeating: 0, count: 64)
        let routed = getenv("UCX_NET_DEVICES") == nil && address.map { qgx_route_device($0, &device, device.count) == 0 } == true
        guard let raw = qgx_node_new(nodeMessage, nil, routed ? device : nil, &error, error.count) else {
            throw ProcessorError("cannot start UCX: \(text(error))")
        }
        self.raw = raw
        self.delegate = delegate
        self.tickNanoseconds = tickNanoseconds
        wakeFD = qgx_wake_fd()
        setArgument()
        let status = qgx_handle(raw, WireID.allCases.map(\.rawValue).min()!, WireID.allCases.map(\.rawValue).max()!)
        guard status == 0 else { throw ProcessorError("cannot set UCX's message handlers: \(String(cString: qgx_status_string(status)))") }
    }

    /// The C side calls back with the node as its argument (set once the node is whole).
    private func setArgument() {
        qgx_node_set_arg(raw, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        stop()
        qgx_node_free(raw)
        Glibc.close(wakeFD)
    }

    /// Listens on `address`:`port` only.
    func listen(address: String, port: Int) throws {
        var error = [CChar](repeating: 0, count: 256)
        let status = qgx_listen(raw, address, UInt16(port), nodeConnect, Unmanaged.passUnretained(self).toOpaque(), &error, error.count)
        guard status == 0 else { throw ProcessorError("cannot listen on \(address):\(port): \(text(error))") }
    }

    /// Starts the progress thread, named `name`.
    func start(name: String) {
        thread = spawnThread(name: name) { [self] in run() }
    }

    /// Ends the progress thread and waits for it.
    func stop() {
        guard let thread else { return }
        stopping.store(true, ordering: .releasing)
        wake()
        pthread_join(thread, nil)
        self.thread = nil
    }

    /// Runs `task` on the progress thread soon.
    func post(_ task: @escaping () -> Void) {
        tasks.withLock { $0.append(task) }
        wake()
    }

    /// Wakes the progress thread if it sleeps.
    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// After posting an operation that completes later: the progress thread must see to it.
    func kick() { if sleeping.load(ordering: .acquiring) { wake() } }

    private func run() {
        var nextTick = monotonicNanoseconds()
        var fds = [pollfd(fd: qgx_node_fd(raw), events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .acquiring) {
            runTasks()
            while qgx_progress(raw) != 0 {}
            // Before sleeping, yield a little: on a busy stream the next message is usually a moment away.
            var spins = 0
            while spins < Self.spinsBeforeSleep {
                sched_yield()
                if qgx_progress(raw) != 0 { spins = 0 } else { spins += 1 }
            }
            let now = monotonicNanoseconds()
            if now >= nextTick {
                let late = now - nextTick
                delegate?.tick(now: now, stalled: late > tickNanoseconds ? late - tickNanoseconds : 0)
                nextTick = now + tickNanoseconds
                continue
            }
            sleeping.store(true, ordering: .sequentiallyConsistent)
            if qgx_arm(raw) == 1 && tasks.withLock({ $0.isEmpty }) {
                let timeout = Int32(min((nextTick - now) / 1_000_000 + 1, 1000))
                _ = poll(&fds, 2, timeout)
                if fds[1].revents != 0 {
                    var count: UInt64 = 0
                    _ = read(wakeFD, &count, 8)
                }
            }
            sleeping.store(false, ordering: .relaxed)
        }
        runTasks()   // what was posted before the stop (closing endpoints) still runs
    }

    private func runTasks() {
        for task in tasks.withLock({ tasks in defer { tasks = [] }; return tasks }) { task() }
    }

    // MARK: Called back by the C side (on the progress thread)

    fileprivate func message(_ id: UInt32, _ ep: Endpoint?, _ header: UnsafeRawPointer?, _ headerLength: Int,
                             _ data: UnsafeMutableRawPointer?, _ length: Int, _ rndv: Bool) {
        guard let wire = WireID(rawValue: id) else { return }
        delegate?.arrived(wire, from: ep, header: UnsafeRawBufferPointer(start: header, count: headerLength),
                          data: data, length: length, rendezvous: rndv)
    }

    fileprivate func failed(_ ep: Endpoint, _ status: Int32) { delegate?.failed(ep, status: status) }
    fileprivate func connecting(_ request: UnsafeMutableRawPointer, _ peer: String) { delegate?.connecting(request, peer: peer) }
}

private func nodeMessage(_ arg: UnsafeMutableRawPointer?, _ ep: OpaquePointer?, _ id: UInt32, _ header: UnsafeRawPointer?,
                         _ headerLength: Int, _ data: UnsafeMutableRawPointer?, _ length: Int, _ rndv: Int32) {
    Unmanaged<UCXNode>.fromOpaque(arg!).takeUnretainedValue().message(id, ep, header, headerLength, data, length, rndv != 0)
}

private func nodeConnect(_ arg: UnsafeMutableRawPointer?, _ request: UnsafeMutableRawPointer?, _ peer: UnsafePointer<CChar>?) {
    Unmanaged<UCXNode>.fromOpaque(arg!).takeUnretainedValue().connecting(request!, String(cString: peer!))
}

/// The error callback's argument is the node.
let endpointFailed: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, Int32) -> Void = { arg, ep, status in
    Unmanaged<UCXNode>.fromOpaque(arg!).takeUnretainedValue().failed(ep!, status)
}

extension UCXNode {
    /// Connects to `address`:`port`; failures arrive at the delegate's `failed`.
    func connect(address: String, port: Int) throws -> Endpoint {
        var status: Int32 = 0
        guard let ep = qgx_connect(raw, address, UInt16(port), endpointFailed, Unmanaged.passUnretained(self).toOpaque(), &status) else {
            throw ProcessorError("cannot connect to \(address):\(port): \(String(cString: qgx_status_string(status)))")
        }
        kick()
        return ep
    }

    /// Accepts a connection request (on the progress thread).
    func accept(_ request: UnsafeMutableRawPointer) -> Endpoint? {
        var status: Int32 = 0
        return qgx_accept(raw, request, endpointFailed, Unmanaged.passUnretained(self).toOpaque(), &status)
    }

    /// Closes `endpoint` and progresses until it is closed: after what is
    /// pending went (`flush`), or at once, failing it. Progress thread.
    func close(_ endpoint: Endpoint, flush: Bool = false) {
        guard let request = qgx_close(endpoint, flush ? 0 : 1) else { return }
        while qgx_closed(request) == 0 { _ = qgx_progress(raw) }
    }

    /// Sends a message with only a header and small data (both copied). Any thread.
    @discardableResult
    func send(_ id: WireID, to endpoint: Endpoint, header: UnsafeRawBufferPointer, bytes: UnsafeRawBufferPointer = .init(start: nil, count: 0)) -> Int32 {
        let status = qgx_send(endpoint, id.rawValue, header.baseAddress, header.count, bytes.baseAddress, bytes.count, nil, 0, 1, nil, nil, 0)
        if status == 1 { kick() }
        return status < 0 ? status : 0
    }
}

/// The text of a NUL-terminated C string held in an array.
private func text(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
