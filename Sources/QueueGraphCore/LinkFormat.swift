/// What the buffers on a link hold: bytes, video frames of a pixel format,
/// size and rate, or audio of a sample format, rate and channel count (like
/// GStreamer's caps, fixed once the graph starts). A field that is nil is
/// not known before buffers flow.
///
/// Formats are settled when a graph is created: each queue, upstream first,
/// is told what reaches it and says what it sends (`FormatAware`). A link
/// whose downstream cannot take what its upstream sends refuses the graph
/// (`ConfigError.Code.formatRefused`), naming both queues.
///
/// Threading: a value; any thread.
public enum LinkFormat: Sendable, Hashable, CustomStringConvertible {
    /// Not said by the upstream processor; every processor accepts it.
    case unknown
    case bytes
    case video(VideoFormat)
    case audio(AudioFormat)

    /// The kind of buffer it is, for the graph file's check of links.
    public var kinds: BufferKinds {
        switch self {
        case .unknown: .any
        case .bytes: .bytes
        case .video: .frames
        case .audio: .audio
        }
    }

    public var description: String {
        switch self {
        case .unknown: "unknown"
        case .bytes: "bytes"
        case .video(let v): v.description
        case .audio(let a): a.description
        }
    }
}

/// The pixel layouts frames come in (FFmpeg's names in brackets).
///
/// Threading: a value; any thread.
public enum PixelFormat: String, Sendable, Hashable, CaseIterable {
    /// R, G, B, A bytes (`rgba`); the render nodes' format.
    case rgba
    /// B, G, R, A bytes (`bgra`).
    case bgra
    /// Planar 4:2:0: Y, then U and V at half width and height (`yuv420p`).
    case i420
    /// 4:2:0 with interleaved U/V (`nv12`).
    case nv12

    /// Whether it is one of the 4:2:0 (Y, U, V) formats.
    public var isYUV: Bool { self == .i420 || self == .nv12 }
}

/// Video on a link; nil fields are not known before frames flow.
///
/// Threading: a value; any thread.
public struct VideoFormat: Sendable, Hashable, CustomStringConvertible {
    public var pixelFormat: PixelFormat?
    public var width: Int?
    public var height: Int?
    public var rate: FrameRate?

    public init(_ pixelFormat: PixelFormat? = nil, width: Int? = nil, height: Int? = nil, rate: FrameRate? = nil) {
        self.pixelFormat = pixelFormat
        self.width = width
        self.height = height
        self.rate = rate
    }

    public var description: String {
        var text = "video \(pixelFormat?.rawValue ?? "any")"
        if let width, let height { text += " \(width)×\(height)" }
        if let rate { text += " \(rate)" }
        return text
    }
}

/// The sample layouts audio comes in (FFmpeg's names; `p`: one plane per channel).
///
/// Threading: a value; any thread.
public enum SampleFormat: String, Sendable, Hashable, CaseIterable {
    case u8, s16, s32, flt, dbl, u8p, s16p, s32p, fltp, dblp

    /// Bytes of one sample of one channel.
    public var bytesPerSample: Int {
        switch self {
        case .u8, .u8p: 1
        case .s16, .s16p: 2
        case .s32, .s32p, .flt, .fltp: 4
        case .dbl, .dblp: 8
        }
    }

    /// One plane per channel (else channels interleave in one plane).
    public var isPlanar: Bool {
        switch self {
        case .u8p, .s16p, .s32p, .fltp, .dblp: true
        case .u8, .s16, .s32, .flt, .dbl: false
        }
    }
}

/// Audio on a link; nil fields are not known before audio flows.
///
/// Threading: a value; any thread.
public struct AudioFormat: Sendable, Hashable, CustomStringConvertible {
    public var sampleFormat: SampleFormat?
    public var rate: Int?
    public var channels: Int?

    public init(_ sampleFormat: SampleFormat? = nil, rate: Int? = nil, channels: Int? = nil) {
        self.sampleFormat = sampleFormat
        self.rate = rate
        self.channels = channels
    }

    public var description: String {
        var text = "audio \(sampleFormat?.rawValue ?? "any")"
        if let rate { text += " \(rate) Hz" }
        if let channels { text += " \(channels) ch" }
        return text
    }
}

/// A processor that says what it sends, given what reaches it; the graph
/// asks it once, when it is created, upstream queues first. A processor
/// that is not `FormatAware` sends `.unknown`, which every processor takes.
///
/// Threading: `negotiate` runs on the thread that creates the graph, before
/// any scheduler thread starts.
public protocol FormatAware: BufferProcessor {
    /// `arriving` holds the format of each in-link, in the order of the
    /// queue's upstream queues (empty for a source). Returns the format of
    /// each out pad, or a single format for every pad. Throws when the
    /// processor cannot take what arrives (with the in-link at fault) or
    /// cannot say what it sends (a source whose file does not open).
    func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat]
}

/// Why a processor refuses the formats that reach it (a value; any thread).
public struct FormatRefusal: Error, Sendable, CustomStringConvertible {
    /// The in-link at fault (an index into `arriving`), nil when no link is.
    public var link: Int?
    public var description: String

    public init(link: Int? = nil, _ description: String) {
        self.link = link
        self.description = description
    }

    /// A refusal of in-link `link` unless its format is `.unknown` or `accepted` says yes.
    public static func check(_ arriving: [LinkFormat], _ what: String, accepted: (LinkFormat) -> Bool) throws(FormatRefusal) {
        for (i, format) in arriving.enumerated() where format != .unknown && !accepted(format) {
            throw FormatRefusal(link: i, "found \(format), expected \(what)")
        }
    }
}

extension FormatAware {
    /// The pass-through answer: what arrives on the first in-link goes out on every pad.
    public func passThrough(_ arriving: [LinkFormat]) -> [LinkFormat] { [arriving.first ?? .unknown] }
}

extension GraphPlan {
    /// The format on each queue's out pads: `negotiate(queue, arriving)` is
    /// asked for each queue, upstream first, what it sends given what reaches
    /// it (the formats of its in-links, in `preds` order; an empty answer is
    /// `.unknown`). A queue in a cycle goes first with `.unknown` from its
    /// unsettled upstreams. Kahn's order: linear in queues and links. A
    /// refusal becomes a `formatRefused` error naming the queue and, when a
    /// link is at fault, its upstream (`ConfigError.from`).
    public func settleFormats(names: [String],
                              _ negotiate: (Int, [LinkFormat]) throws(FormatRefusal) -> [LinkFormat]) throws(ConfigErrors) -> [[LinkFormat]] {
        let plan = self
        let count = names.count
        var sent: [[LinkFormat]?] = Array(repeating: nil, count: count)
        var waitingFor = plan.preds.map(\.count)
        var ready = (0..<count).filter { waitingFor[$0] == 0 }
        var lowestUnsettled = 0
        /// The format of the `nth` link from `from` into `to` (a queue may feed another on several pads).
        func format(from: Int, to: Int, nth: Int) -> LinkFormat {
            guard let formats = sent[from] else { return .unknown }
            let pads = plan.outs[from].indices.filter { plan.outs[from][$0] == to }
            return nth < pads.count ? formats[min(pads[nth], formats.count - 1)] : .unknown
        }
        for _ in 0..<count {
            let next: Int
            if let i = ready.popLast() {
                next = i
            } else {   // a cycle: the lowest queue not yet settled goes first
                while sent[lowestUnsettled] != nil { lowestUnsettled += 1 }
                next = lowestUnsettled
            }
            let preds = plan.preds[next]
            let arriving = preds.indices.map { i in format(from: preds[i], to: next, nth: preds[..<i].filter { $0 == preds[i] }.count) }
            do throws(FormatRefusal) {
                let formats = try negotiate(next, arriving)
                sent[next] = formats.isEmpty ? [.unknown] : formats
            } catch {
                let message = if let link = error.link {
                    "the link from '\(names[plan.preds[next][link]])' into '\(names[next])' cannot carry its buffers: \(error)"
                } else {
                    "\(error)"
                }
                throw ConfigErrors(errors: [ConfigError(.formatRefused, queue: names[next], field: error.link == nil ? "parameters" : "connections",
                                                        message, from: error.link.map { names[plan.preds[next][$0]] })])
            }
            for successor in plan.outs[next] where sent[successor] == nil {
                waitingFor[successor] -= 1
                if waitingFor[successor] == 0 { ready.append(successor) }
            }
        }
        return sent.enumerated().map { i, formats in
            plan.outs[i].indices.map { pad in formats![min(pad, formats!.count - 1)] }
        }
    }
}
