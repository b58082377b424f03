import CUCX
import Foundation
@_spi(Runtime) import QueueGraphCore

/// The kinds of UCX Active Message QueueGraph sends between a coordinator
/// and a worker (its message ids).
enum WireID: UInt32, CaseIterable {
    /// Session messages: header one `ControlKind` byte, data its bytes.
    case control = 1
    /// Coordinator → worker: a buffer; header a `LinkMessage`, data the payload.
    case buffer = 2
    /// Worker → coordinator: an ack, release or send (`LinkMessage`); a send carries the payload.
    case reply = 3
    /// Worker → coordinator: the part's statistics counters (`ChannelStatistics`), little-endian Int64s.
    case statistics = 4
    /// Coordinator → a compound queue's remote server: render a part of a frame (`TileRequest`).
    case tile = 5
    /// Remote server → coordinator: the part's pixels, row after row (header: the request's number).
    case tileDone = 6
    /// Worker → coordinator: replies without payload, batched (data: `LinkMessage`s, 64 bytes each).
    case replies = 7
    /// Coordinator → worker: small buffers, batched (data: a `BufferBatch`).
    case buffers = 8
}

/// What a control message says.
enum ControlKind: UInt8 {
    /// Worker → coordinator, first: 32 random bytes to prove the key on.
    case challenge = 1
    /// Coordinator → worker: the proof (32 bytes), then its own 32-byte challenge.
    case response = 2
    /// Worker → coordinator: the worker's proof on the coordinator's challenge.
    case accepted = 3
    /// Either way: why the session ends (UTF-8).
    case refused = 4
    /// Coordinator → worker: run a part (`RunRequest`, JSON).
    case run = 5
    /// Worker → coordinator: the part runs; buffers may come (data: its wire protocol, `RunRequest.versionBytes`).
    case ready = 6
    /// Worker → coordinator: the part failed (UTF-8 reason).
    case failed = 7
    /// Coordinator → worker: no more buffers will come after the ones sent (data: their number, `MessageCount`).
    case endOfStream = 8
    /// Worker → coordinator: the part's graph has ended, after its last statistics (data: the replies it sent, `MessageCount`).
    case finished = 9
    /// Either way, every tick: the peer is alive.
    case heartbeat = 10
}

/// What the coordinator asks a worker to run: the graph file's text (and
/// its path, for files it names, resolved as on the coordinator), the
/// `remote` queue whose part is wanted, and the link's window.
struct RunRequest: Codable {
    var file: String
    var path: String
    var queue: String
    var capacity: Int
    /// The link's format code (`LinkFormat.code`) that every buffer carries.
    var format: UInt32
    /// Whether a buffer sent back carries its payload: only when a queue of
    /// the part may change it (`buffers: reuse`); otherwise the coordinator's
    /// copy is the same bytes and only the fields travel.
    var returnsPayload: Bool
    /// Set for a compound queue's server (`server-hosts`): the worker renders that server's parts of `queue`.
    var server: Int? = nil
    /// How long a silence from the coordinator means it is gone (its host's `silence-ms`); nil: the worker's default.
    var silenceMilliseconds: Int? = nil
    /// The wire protocol the coordinator speaks (nil: the first, before it was sent).
    var protocolVersion: Int? = RunRequest.protocolVersion

    /// This build's wire protocol: 2 added batches of small buffers (`WireID.buffers`).
    /// Both sides check it: a worker runs parts only for a coordinator that
    /// speaks its own, and says its own with `ready` (`versionBytes`), which
    /// a coordinator checks before it sends a buffer.
    static let protocolVersion = 2
    /// The version as `ready` carries it: 4 bytes, little-endian.
    static let versionBytes = withUnsafeBytes(of: UInt32(protocolVersion).littleEndian) { [UInt8]($0) }
}

/// The shared key and the challenge-response proofs.
///
/// A worker accepts a coordinator that returns HMAC-SHA-256(key,
/// "qgraph coordinator" ‖ challenge) for its random challenge; the worker
/// proves itself the same way ("qgraph worker") on the coordinator's. The
/// key itself never crosses.
public struct SharedKey: Sendable {
    let bytes: [UInt8]

    /// Reads a key file: at least 16 bytes (whitespace at the ends is not part of the key).
    public init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ProcessorError("cannot read the key file \(file)")
        }
        var bytes = [UInt8](data)
        while let last = bytes.last, last == 10 || last == 13 || last == 32 || last == 9 { bytes.removeLast() }
        guard bytes.count >= 16 else {
            throw ProcessorError("the key file \(file) holds \(bytes.count) bytes, expected at least 16 (make one with: head -c 32 /dev/urandom | base64 > \(file))")
        }
        self.bytes = bytes
    }

    static let proofLength = 32

    func proof(_ role: String, on challenge: [UInt8]) -> [UInt8] {
        let message = Array(role.utf8) + challenge
        var out = [UInt8](repeating: 0, count: 32)
        qgx_hmac_sha256(bytes, bytes.count, message, message.count, &out)
        return out
    }

    static func challenge() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        precondition(qgx_random(&bytes, 32) == 0, "the system's random source failed")
        return bytes
    }

    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.count == b.count && qgx_equal(a, b, a.count) == 1 }
}

extension UCXNode {
    /// Sends a control message (any thread).
    @discardableResult
    func send(_ kind: ControlKind, to endpoint: Endpoint, _ bytes: [UInt8] = []) -> Int32 {
        var byte = kind.rawValue
        return withUnsafeBytes(of: &byte) { header in bytes.withUnsafeBytes { send(.control, to: endpoint, header: header, bytes: $0) } }
    }
}

extension LinkMessage {
    /// The message a header holds, when it is one (64 bytes).
    init?(header: UnsafeRawBufferPointer) {
        guard header.count == MemoryLayout<LinkMessage>.size, let base = header.baseAddress else { return nil }
        self = base.loadUnaligned(as: LinkMessage.self)
    }
}

/// Small buffers that go to a worker as one message (`WireID.buffers`):
/// each a `LinkMessage`, then its payload padded to 8 bytes. One message
/// per buffer costs UCX a send and the network a packet each; batched,
/// 4 KiB buffers go at 2.5 times the rate (docs/performance.md).
///
/// Threading: the coordinator's link thread fills one; `entries` reads a
/// received one on the worker's progress thread.
struct BufferBatch {
    /// The bytes a batch may hold.
    static let capacity = 64 << 10
    /// Buffers of at most this many bytes go in batches; larger ones alone,
    /// zero-copy from registered memory.
    static let largest = 8 << 10
    private static let headerBytes = MemoryLayout<LinkMessage>.size

    let bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    private(set) var used = 0
    private(set) var count = 0

    /// The bytes a buffer of `size` bytes takes in a batch: its message, its payload, padding to 8.
    static func entryBytes(_ size: Int) -> Int { headerBytes + ((size + 7) & ~7) }

    /// Whether a buffer of `size` bytes fits beside what the batch holds.
    func fits(_ size: Int) -> Bool { used + Self.entryBytes(size) <= Self.capacity }

    mutating func append(_ message: LinkMessage, payload: UnsafeRawPointer?, size: Int) {
        var message = message
        let entry = Self.entryBytes(size)
        withUnsafeBytes(of: &message) { (bytes + used).copyMemory(from: $0.baseAddress!, byteCount: Self.headerBytes) }
        if size > 0 { (bytes + used + Self.headerBytes).copyMemory(from: payload!, byteCount: size) }
        (bytes + used + Self.headerBytes + size).initializeMemory(as: UInt8.self, repeating: 0, count: entry - Self.headerBytes - size)   // no stale bytes cross
        used += entry
        count += 1
    }

    mutating func removeAll() { (used, count) = (0, 0) }

    func deallocate() { bytes.deallocate() }

    /// Hands each buffer of a received batch to `body` (its message, payload
    /// and size) until `body` refuses one; returns the refusal, or why the
    /// batch is malformed, or nil.
    static func entries(in data: UnsafeMutableRawPointer?, length: Int,
                        _ body: (LinkMessage, UnsafeMutableRawPointer, Int) -> String?) -> String? {
        guard let data, length > 0 else { return "an empty batch of buffers" }
        var at = 0
        while at < length {
            guard length - at >= headerBytes, let message = LinkMessage(header: UnsafeRawBufferPointer(start: data + at, count: headerBytes)),
                  message.size <= UInt64(length - at - headerBytes) else {
                return "a malformed batch of buffers (an entry at byte \(at) of \(length) runs past its end)"
            }
            let size = Int(message.size)
            if let refusal = body(message, data + at + headerBytes, size) { return refusal }
            at += entryBytes(size)
        }
        return nil
    }
}

/// A count as `endOfStream` and `finished` carry it: 8 bytes, little-endian.
/// Messages on an endpoint may pass one another (a send UCX had to queue
/// is overtaken by a later one), so each side says how many it sent before
/// its last word, and the other waits for them all.
enum MessageCount {
    static func bytes(_ count: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(count).littleEndian) { [UInt8]($0) } }
    /// The count `bytes` holds, or nil.
    static func read(_ bytes: [UInt8]) -> Int? {
        guard bytes.count == 8 else { return nil }
        let value = UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        return value <= UInt64(Int.max) ? Int(value) : nil
    }
}

extension RemoteHost {
    /// The host as errors name it: `host 'render1' (10.0.0.2:7700)`.
    var label: String { "host '\(name)' (\(address):\(port))" }
}

extension LinkFormat {
    /// A stable 32-bit code of the format (FNV-1a of its description), which
    /// every buffer across a network carries and the far side checks.
    public var code: UInt32 {
        description.utf8.reduce(2_166_136_261 as UInt32) { ($0 ^ UInt32($1)) &* 16_777_619 }
    }
}
