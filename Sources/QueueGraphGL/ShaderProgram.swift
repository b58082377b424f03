import CGLFW
import Foundation

/// A shadertoy-style fragment shader from a file, linked with a full-screen
/// triangle: the file defines `mainImage(out vec4, in vec2)`; the prelude
/// declares the uniforms and calls it. Compile errors come back as the
/// compiler's log with the file's own line numbers
/// (`shaders/x.frag:12:5: error: …`).
///
/// Threading: the owner thread.
public struct ShaderProgram {
    let name: GLuint
    private let resolution: GLint
    private let time: GLint
    private let timeDelta: GLint
    private let frame: GLint

    /// What goes before a pass's file: the uniforms (`iHistory`, the last
    /// `history` input frames, newest first, when there are any), and
    /// `main` calling `mainImage`.
    public static func prelude(history: Int = 0) -> String {
        """
        #version 330 core
        uniform vec3 iResolution;
        uniform float iTime;
        uniform float iTimeDelta;
        uniform int iFrame;
        uniform sampler2D iChannel0;
        uniform sampler2D iChannel1;
        uniform sampler2D iChannel2;
        \(history > 0 ? "uniform sampler2D iHistory[\(history)];" : "")
        out vec4 qgFragColor;
        void mainImage(out vec4 fragColor, in vec2 fragCoord);
        void main() { mainImage(qgFragColor, gl_FragCoord.xy); }
        #line 1

        """
    }

    /// The texture unit of `iHistory[0]` (the others follow).
    static let firstHistoryUnit: Int32 = 3

    /// A triangle covering the viewport, from `gl_VertexID` alone (no vertex buffer).
    public static let vertexSource = """
        #version 330 core
        void main() {
            vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
            gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
        }
        """

    init(fragmentFile path: String, history: Int = 0, owner: GLOwner) throws {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw GLError("\(path): cannot read the shader: \(error.localizedDescription)")
        }
        try self.init(source: source, file: path, history: history, owner: owner)
    }

    /// A pass from source text (`mainImage` and what it uses); `file` names it in errors.
    init(source: String, file path: String, history: Int = 0, owner: GLOwner) throws {
        let vertex = try Self.compile(Self.vertexSource, kind: GL_VERTEX_SHADER, file: "(built-in vertex shader)")
        defer { glDeleteShader(vertex) }
        let fragment = try Self.compile(Self.prelude(history: history) + source, kind: GL_FRAGMENT_SHADER, file: path)
        defer { glDeleteShader(fragment) }
        let program = glCreateProgram()
        glAttachShader(program, vertex)
        glAttachShader(program, fragment)
        glLinkProgram(program)
        try Self.check(program, program: true, file: path)
        name = program
        owner.made()
        glUseProgram(program)
        glUniform1i(glGetUniformLocation(program, "iChannel0"), 0)
        glUniform1i(glGetUniformLocation(program, "iChannel1"), 1)
        glUniform1i(glGetUniformLocation(program, "iChannel2"), 2)
        for i in 0..<history { glUniform1i(glGetUniformLocation(program, "iHistory[\(i)]"), Self.firstHistoryUnit + Int32(i)) }
        resolution = glGetUniformLocation(program, "iResolution")
        time = glGetUniformLocation(program, "iTime")
        timeDelta = glGetUniformLocation(program, "iTimeDelta")
        frame = glGetUniformLocation(program, "iFrame")
    }

    /// Sets the per-frame uniforms (the program must be in use).
    func set(resolution size: (Float, Float), time t: Float, delta: Float, frame n: Int32) {
        glUniform3f(resolution, size.0, size.1, 1)
        glUniform1f(time, t)
        glUniform1f(timeDelta, delta)
        glUniform1i(frame, n)
    }

    func delete(_ owner: GLOwner) {
        glDeleteProgram(name)
        owner.deleted()
    }

    private static func compile(_ source: String, kind: Int32, file: String) throws -> GLuint {
        let shader = glCreateShader(GLenum(kind))
        source.withCString { text in
            var pointer: UnsafePointer<GLchar>? = text
            glShaderSource(shader, 1, &pointer, nil)
        }
        glCompileShader(shader)
        try check(shader, program: false, file: file)
        return shader
    }

    /// Throws the object's log as `file:line` errors (deleting the object)
    /// when the shader did not compile or the program did not link.
    private static func check(_ object: GLuint, program: Bool, file: String) throws {
        var status: GLint = 0
        (program ? glGetProgramiv : glGetShaderiv)(object, GLenum(program ? GL_LINK_STATUS : GL_COMPILE_STATUS), &status)
        guard status != GL_TRUE else { return }
        let log = Self.log(of: object, program: program)
        if program { glDeleteProgram(object) } else { glDeleteShader(object) }
        throw GLError("\(file): the shader does not \(program ? "link" : "compile"):\n\(withFileLines(log, file: file))")
    }

    /// An object's info log, through `glGetShaderiv`/`glGetShaderInfoLog` or their program twins.
    private static func log(of object: GLuint, program: Bool) -> String {
        let getiv = program ? glGetProgramiv : glGetShaderiv
        let getLog = program ? glGetProgramInfoLog : glGetShaderInfoLog
        var length: GLint = 0
        getiv(object, GLenum(GL_INFO_LOG_LENGTH), &length)
        var text = [GLchar](repeating: 0, count: Int(max(length, 1)))
        getLog(object, length, nil, &text)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Mesa writes `0:12(5): error: …` (source string, line, column);
    /// this rewrites each such line as `file:12:5: error: …`.
    static func withFileLines(_ log: String, file: String) -> String {
        let location = /^\d+:(\d+)\((\d+)\): (.*)$/
        return log.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard let m = line.wholeMatch(of: location) else { return String(line) }
            return "\(file):\(m.1):\(m.2): \(m.3)"
        }.joined(separator: "\n")
    }
}
