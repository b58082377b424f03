import Foundation
import QueueGraphRender
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("the live page", .serialized)
struct LivePageTests {
    /// Runs a shell command through `system` (which waits for its own child;
    /// Chromium's helper processes outlive it), its output to a file.
    private func shell(_ command: String) -> (status: Int32, out: String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("livepage-\(getpid()).out").path
        defer { unlink(output) }
        let status = system("\(command) > \(output) 2>/dev/null < /dev/null")
        return ((status >> 8) & 0xFF, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    @Test("qgraph run --serve: headless Chromium shows the running animation's graph with live numbers; the events stream statistics")
    func page() async throws {
        // The main demo, small (a debug build keeps up), running until stopped, into a frame sink.
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("Graphs/animation.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "width: 640, height: 360, fps: 60, frames: 600", with: "width: 96, height: 54, fps: 60, frames: 0")
            .replacingOccurrences(of: "processor: y4msink", with: "processor: framesink")
            .replacingOccurrences(of: "parameters: {path: /tmp/qgraph-animation.y4m}", with: "")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("live-page-\(getpid()).yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let running = try QGraphProcess(["run", file.path, "--quiet", "--serve", "0"])
        defer { _ = running.stop() }

        // It says where it serves, on loopback.
        var said = ""
        for _ in 0..<300 where !said.contains("live page: ") {
            try await Task.sleep(for: .milliseconds(100))
            said += String(decoding: running.errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        let address = try #require(said.split(separator: "\n").first { $0.contains("live page: ") }.map { String($0.split(separator: " ").last!) })
        #expect(address.hasPrefix("http://127.0.0.1:"), "loopback unless told otherwise: \(address)")
        try await Task.sleep(for: .milliseconds(500))

        let chromium = "chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars"
        let dom = shell("timeout 60 \(chromium) --dump-dom \(address)")
        #expect(dom.status == 0, "chromium --dump-dom: \(dom.status)")
        for queue in ["render", "julia", "plasma", "blur", "composite", "overlay", "output"] {
            #expect(dom.out.contains("id=\"queue-\(queue)\"") && dom.out.contains("<td>\(queue)</td>"), "the picture and the table show \(queue)")
        }
        #expect(dom.out.contains("id=\"status\">live · "))
        // The page drew live numbers into the picture: a queue's depth against its size and its rate out.
        let drawn = try Regex(#">\d+/2 · \d+(\.\d)?/s</text>"#)
        #expect(dom.out.contains(drawn), "numbers drawn into the picture")
        let moving = try Regex(#"<td>[a-z]+</td><td>\d+</td><td>\d+/\d+</td><td>\d+(\.\d)?</td><td>[1-9]\d*(\.\d)?</td>"#)
        #expect(dom.out.contains(moving), "frames flow: a queue's rate out in the table: \(dom.out.suffix(1500))")

        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("live-page-\(getpid()).png")
        defer { try? FileManager.default.removeItem(at: screenshot) }
        #expect(shell("timeout 60 \(chromium) --window-size=1200,800 --screenshot=\(screenshot.path) \(address)").status == 0)
        // The picture in the screenshot is filled by the page from the live depths: Graphviz draws the
        // nodes grey (#e9ecef), the page green to red (hsl(h, 70 %, 80 %): one channel near 240, one near 168).
        let (width, height, pixels) = try readPNG(path: screenshot.path)
        let filled = pixels.filter { pixel in
            let channels = [pixel & 0xFF, (pixel >> 8) & 0xFF, (pixel >> 16) & 0xFF]
            return (232...248).contains(channels.max()!) && (160...176).contains(channels.min()!)
        }.count
        #expect(width == 1200 && height == 800 && filled > 7 * 2_000, "\(filled) pixels of live fill in the screenshot")

        // The events: statistics twice a second, with each queue's size and the graph's shape.
        let events = shell("curl -sN --max-time 2 \(address)events")
        let lines = events.out.split(separator: "\n").filter { $0.hasPrefix("data: ") }
        #expect(lines.count >= 3, "\(events.out.prefix(300))")
        let last = try #require(lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(6).utf8)) as? [String: Any] })
        #expect((last["sizes"] as? [String: Int])?["blur"] == 2 && (last["queues"] as? [Any])?.count == 7 && last["shape"] is String)
    }
}
