import CUCX
import Foundation
@_spi(Runtime) import QueueGraphCore
import Synchronization

/// What a coordinator's session hands its owner (a `RemoteLink`, a
/// `RemoteServer`); called on the session's progress thread.
protocol SessionOwner: AnyObject, Sendable {
    /// A message other than the session's own control messages.
    func received(_ id: WireID, header: UnsafeRawBufferPointer, data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool)
    /// The worker said `finished` after sending `replies` replies; the owner
    /// calls `concludeFinished` once it has taken them all.
    func workerFinished(replies: Int)
    /// The endpoint is closing: what was landing will not land.
    func closing()
}

/// The coordinator's end of one session with a worker: connecting, the
/// challenge and response both ways, the `run` request, heartbeats, and
/// failure (the endpoint's, or silence), with reconnecting when asked.
///
/// The state is published to the owner's thread through `state` and
/// `news`, and `wake` is notified on every change. Threading: `state`,
/// `news`, `failure`, `withEndpoint`, `begin` and `retry` from any thread;
/// the rest on the node's progress thread (its callbacks).
final class CoordinatorSession: UCXNodeDelegate, @unchecked Sendable {
    enum State: Int { case idle, connecting, proving, running, failed, finished }

    let host: RemoteHost
    private let key: SharedKey
    /// What the worker is asked to run (set by `begin`).
    private var request: RunRequest?
    private let timing: RemoteTiming
    private let wake: WakeEvent
    private weak var owner: (any SessionOwner)?
    private(set) var node: UCXNode!

    private let stateWord = Atomic<Int>(State.idle.rawValue)
    /// Set on every change of state, for the owner's thread to take.
    let news = Atomic<Bool>(false)
    /// Why the last session ended.
    let failure = Locked<String?>(nil)
    /// The endpoint other threads send on while the part runs: the lock keeps a send and the endpoint's closing apart.
    private let sending = Locked<Endpoint?>(nil)
    /// A new session is wanted (at the start, and after a failure when the owner reconnects).
    private let wanted = Atomic<Bool>(false)
    /// The owner took a failure in and waits for a new session: failed attempts are retried.
    private let reconnecting = Atomic<Bool>(false)

    // Progress thread only.
    private var endpoint: Endpoint?
    private var challenge: [UInt8] = []
    private var lastHeard: UInt64 = 0
    private var nextAttempt: UInt64 = 0
    private var failing = false

    /// Between attempts to reach a host that went away.
    static let retryInterval: UInt64 = 200_000_000

    init(host: RemoteHost, key: SharedKey, timing: RemoteTiming, wake: WakeEvent) {
        (self.host, self.key, self.timing, self.wake) = (host, key, timing, wake)
    }

    var state: State { State(rawValue: stateWord.load(ordering: .acquiring))! }

    /// A silence this long from the host means it is gone: its `silence-ms`, else the timing's.
    private var deadAfter: UInt64 { host.silenceMilliseconds.map { UInt64($0) * 1_000_000 } ?? timing.deadAfterNanoseconds }

    /// Starts the node's thread (named `name`) and the first session, which asks for `request`.
    func begin(owner: any SessionOwner, name: String, request: RunRequest) throws {
        self.owner = owner
        var request = request
        request.silenceMilliseconds = Int(deadAfter / 1_000_000)   // the worker waits as long for this side
        self.request = request
        node = try UCXNode(delegate: self, tickNanoseconds: timing.tickNanoseconds, toward: host.address)
        node.start(name: name)
        wanted.store(true, ordering: .releasing)
        node.wake()
    }

    /// Waits (on the owner's thread) until the session runs; throws its failure, or after `timeout`.
    func waitUntilRunning(timeout: UInt64) throws {
        let deadline = monotonicNanoseconds() &+ timeout
        while true {
            switch state {
            case .running:
                return
            case .failed, .finished:
                throw ProcessorError("\(host.label): \(failure.withLock { $0 } ?? "the session ended")")
            case .idle, .connecting, .proving:
                if monotonicNanoseconds() > deadline {
                    throw ProcessorError("\(host.label) did not run the part within \(timeout / 1_000_000_000) s")
                }
                _ = wake.wait(timeoutNanoseconds: 10_000_000) { news.load(ordering: .acquiring) }
                news.store(false, ordering: .relaxed)
            }
        }
    }

    /// After a failure the owner took in: connect again (every `retryInterval`) until the host is back.
    func retry() {
        reconnecting.store(true, ordering: .releasing)
        wanted.store(true, ordering: .releasing)
        node.wake()
    }

    /// The session runs again (the owner saw `running` after `retry`).
    func resumed() { reconnecting.store(false, ordering: .relaxed) }

    /// Runs `body` with the endpoint while the session runs (nil otherwise); any thread.
    func withEndpoint<R>(_ body: (Endpoint?) -> R) -> R { sending.withLock { body($0) } }

    /// Sends a control message once the progress thread gets to it.
    func post(_ kind: ControlKind, _ bytes: [UInt8] = []) { node.post { [self] in if let endpoint { node.send(kind, to: endpoint, bytes) } } }

    /// Closes the session and ends the node's thread (the owner's thread, at its end).
    func end() {
        guard let node else { return }
        node.post { [self] in close() }
        node.stop()
    }

    // MARK: Progress thread

    func tick(now: UInt64, stalled: UInt64) {
        lastHeard = min(now, lastHeard + stalled)
        let state = self.state
        if (state == .idle || state == .failed) && wanted.load(ordering: .acquiring) && now >= nextAttempt {
            nextAttempt = now + Self.retryInterval
            connect(now: now)
            return
        }
        guard let endpoint, !failing, state != .idle && state != .failed else { return }
        node.send(.heartbeat, to: endpoint)
        if now - lastHeard > deadAfter {
            fail("no word from it for \((now - lastHeard) / 1_000_000) ms (a killed worker or a cut network)")
        }
    }

    private func connect(now: UInt64) {
        wanted.store(false, ordering: .relaxed)
        do {
            endpoint = try node.connect(address: host.address, port: host.port)
            lastHeard = now
            set(.connecting)
        } catch {
            failure.withLock { $0 = "\(error)" }
            set(.failed)
            if reconnecting.load(ordering: .acquiring) { wanted.store(true, ordering: .releasing) }
        }
    }

    func connecting(_ request: UnsafeMutableRawPointer, peer: String) {}

    func failed(_ endpoint: Endpoint, status: Int32) {
        guard endpoint == self.endpoint else { return }
        let why = String(cString: qgx_status_string(status))
        fail(state == .connecting
             ? "cannot reach its worker (\(why)): is `qgraph worker --listen \(host.address):\(host.port)` running there, with the port open?"
             : "its endpoint failed: \(why)")
    }

    func arrived(_ id: WireID, from endpoint: Endpoint?, header: UnsafeRawBufferPointer,
                 data: UnsafeMutableRawPointer?, length: Int, rendezvous: Bool) {
        guard let endpoint = self.endpoint else { return }
        lastHeard = monotonicNanoseconds()
        switch id {
        case .control:
            guard header.count == 1, let kind = ControlKind(rawValue: header[0]), !rendezvous else { return fail("sent a malformed control message") }
            control(kind, length > 0 ? [UInt8](UnsafeRawBufferPointer(start: data, count: length)) : [], endpoint)
        case .buffer, .tile:
            fail("sent a \(id) message, which only a coordinator sends")
        default:
            owner?.received(id, header: header, data: data, length: length, rendezvous: rendezvous)
        }
    }

    private func control(_ kind: ControlKind, _ bytes: [UInt8], _ endpoint: Endpoint) {
        switch (kind, state) {
        case (.heartbeat, _):
            break
        case (.challenge, .connecting) where bytes.count == 32:
            challenge = SharedKey.challenge()
            node.send(.response, to: endpoint, key.proof("qgraph coordinator", on: bytes) + challenge)
            set(.proving)
        case (.accepted, .proving):
            guard SharedKey.same(bytes, key.proof("qgraph worker", on: challenge)) else {
                return fail("the worker did not prove the key (is it the worker you meant, with the same key?)")
            }
            guard let json = try? JSONEncoder().encode(request) else { return fail("cannot encode the request") }
            node.send(.run, to: endpoint, [UInt8](json))
        case (.ready, .proving):
            guard bytes == RunRequest.versionBytes else {
                let version = bytes.count == 4 ? Int(UInt32(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })) : 1
                return fail("the worker speaks wire protocol \(version), this coordinator \(RunRequest.protocolVersion): run the same QueueGraph release on both")
            }
            sending.withLock { $0 = endpoint }
            set(.running)
        case (.refused, _):
            fail("the worker refused the session: \(String(decoding: bytes, as: UTF8.self))")
        case (.failed, _):
            fail("the worker could not run the part: \(String(decoding: bytes, as: UTF8.self))")
        case (.finished, .running):
            guard let replies = MessageCount.read(bytes) else { return fail("sent a malformed finished") }
            owner?.workerFinished(replies: replies)
        default:
            fail("sent \(kind) out of turn")
        }
    }

    /// The owner has taken everything the worker sent before `finished`.
    func concludeFinished() { set(.finished) }

    private func set(_ state: State) {
        stateWord.store(state.rawValue, ordering: .releasing)
        news.store(true, ordering: .releasing)
        wake.notify()
    }

    /// Ends the session for `reason`: the endpoint is closed (what is
    /// pending fails first), then the owner's thread hears of it. Posted:
    /// callbacks run inside UCX's progress, which may not progress again.
    func fail(_ reason: String) {
        guard !failing else { return }
        failing = true
        node.post { [self] in
            close()
            failure.withLock { $0 = reason }
            failing = false
            if reconnecting.load(ordering: .acquiring) { wanted.store(true, ordering: .releasing) }   // the host is not back yet
            set(.failed)
        }
    }

    private func close() {
        guard let endpoint else { return }
        self.endpoint = nil
        sending.withLock { $0 = nil }
        node.close(endpoint)
        owner?.closing()
    }
}
