import CGLFW
import QueueGraphCore
import QueueGraphRender

/// The output pack conversion on the render thread (seed 002): an RGBA
/// texture becomes I420 or NV12 planes by two shader passes into 8-bit
/// targets, luma at full size and chroma at half size, read into a pack
/// buffer as the frame's planes lie in its buffer (rows padded to 64 bytes).
/// The arithmetic is the CPU's (`y4msink`'s RGBA to I420: BT.601, limited
/// range, chroma the mean of each 2×2 block), in exact integers, so either
/// way gives the same bytes; and a frame reads back 1.5 bytes per pixel
/// instead of 4.
///
/// Threading: the owner thread.
final class PackConversion {
    let format: PixelFormat
    private let luma: ShaderProgram
    private let chroma: ShaderProgram
    private let vertexArray: GLuint
    /// Luma (R8, the frame's size) and chroma (I420: R8, U rows then V rows; NV12: RG8) targets.
    private var targets: [(texture: GLuint, framebuffer: GLuint)] = []
    private var size = (width: 0, height: 0)

    /// Compiles the passes (and draws each once, so that llvmpipe builds them now).
    init(format: PixelFormat, owner: GLOwner) throws {
        precondition(format == .i420 || format == .nv12, "a pack conversion makes I420 or NV12")
        self.format = format
        luma = try ShaderProgram(source: Self.lumaSource, file: "(built-in luma pass)", owner: owner)
        chroma = try ShaderProgram(source: Self.chromaSource(nv12: format == .nv12), file: "(built-in chroma pass)", owner: owner)
        vertexArray = owner.make(glGenVertexArrays)
        let scratch = owner.makeTexture(width: 2, height: 2)
        prepare(owner, width: 2, height: 2)
        draw(scratch)
        glFinish()
        owner.deleteTexture(scratch)
    }

    /// Bytes of the planes, as `Frame` lays them out after its header.
    static func planeBytes(width: Int, height: Int, format: PixelFormat) -> Int {
        Frame.byteCount(width: width, height: height, format: format) - Frame.headerSize
    }

    /// Makes (or remakes) the targets for frames of this size.
    func prepare(_ owner: GLOwner, width: Int, height: Int) {
        guard (width, height) != size else { return }
        release(owner)
        let (cw, ch) = ((width + 1) / 2, (height + 1) / 2)
        let chromaTarget = format == .nv12 ? (cw, ch, GL_RG8, GL_RG) : (cw, 2 * ch, GL_R8, GL_RED)
        for (w, h, internalFormat, pixels) in [(width, height, GL_R8, GL_RED), chromaTarget] {
            let texture = owner.makeTexture(width: w, height: h, internalFormat: internalFormat, format: pixels)
            let framebuffer = owner.make(glGenFramebuffers)
            glBindFramebuffer(GLenum(GL_FRAMEBUFFER), framebuffer)
            glFramebufferTexture2D(GLenum(GL_FRAMEBUFFER), GLenum(GL_COLOR_ATTACHMENT0), GLenum(GL_TEXTURE_2D), texture, 0)
            targets.append((texture, framebuffer))
        }
        glBindFramebuffer(GLenum(GL_FRAMEBUFFER), 0)
        size = (width, height)
    }

    /// Converts `texture` (the frame's image, `size`) and reads the planes
    /// into the pack buffer bound to `GL_PIXEL_PACK_BUFFER`, from offset 0.
    func convert(_ texture: GLuint) {
        draw(texture)
        let (width, height) = size
        let layout = Frame.Layout.packed(width: width, height: height, format: format)
        let (cw, ch) = ((width + 1) / 2, (height + 1) / 2)
        glPixelStorei(GLenum(GL_PACK_ALIGNMENT), 1)
        glBindFramebuffer(GLenum(GL_READ_FRAMEBUFFER), targets[0].framebuffer)
        glPixelStorei(GLenum(GL_PACK_ROW_LENGTH), GLint(layout.strides.0))
        glReadPixels(0, 0, GLsizei(width), GLsizei(height), GLenum(GL_RED), GLenum(GL_UNSIGNED_BYTE), nil)
        let chromaOffset = UnsafeMutableRawPointer(bitPattern: layout.offsets.1 - Frame.headerSize)
        glBindFramebuffer(GLenum(GL_READ_FRAMEBUFFER), targets[1].framebuffer)
        if format == .nv12 {   // one plane of U, V pairs: a row of RG pixels
            glPixelStorei(GLenum(GL_PACK_ROW_LENGTH), GLint(layout.strides.1 / 2))
            glReadPixels(0, 0, GLsizei(cw), GLsizei(ch), GLenum(GL_RG), GLenum(GL_UNSIGNED_BYTE), chromaOffset)
        } else {   // the U plane's rows, then the V plane's: one read, as the two planes follow each other
            glPixelStorei(GLenum(GL_PACK_ROW_LENGTH), GLint(layout.strides.1))
            glReadPixels(0, 0, GLsizei(cw), GLsizei(2 * ch), GLenum(GL_RED), GLenum(GL_UNSIGNED_BYTE), chromaOffset)
        }
        glPixelStorei(GLenum(GL_PACK_ROW_LENGTH), 0)
        glPixelStorei(GLenum(GL_PACK_ALIGNMENT), 4)
    }

    /// Both passes, each into its target.
    private func draw(_ texture: GLuint) {
        let (cw, ch) = ((size.width + 1) / 2, (size.height + 1) / 2)
        glActiveTexture(GLenum(GL_TEXTURE0))
        glBindTexture(GLenum(GL_TEXTURE_2D), texture)
        glBindVertexArray(vertexArray)
        for (i, (program, w, h)) in [(luma, size.width, size.height), (chroma, cw, format == .nv12 ? ch : 2 * ch)].enumerated() {
            glBindFramebuffer(GLenum(GL_FRAMEBUFFER), targets[i].framebuffer)
            glViewport(0, 0, GLsizei(w), GLsizei(h))
            glUseProgram(program.name)
            program.set(resolution: (Float(w), Float(h)), time: 0, delta: 0, frame: 0)
            glDrawArrays(GLenum(GL_TRIANGLES), 0, 3)
        }
        glBindFramebuffer(GLenum(GL_FRAMEBUFFER), 0)
    }

    func release(_ owner: GLOwner) {
        for target in targets {
            owner.delete(target.framebuffer, glDeleteFramebuffers)
            owner.deleteTexture(target.texture)
        }
        (targets, size) = ([], (0, 0))
    }

    func delete(_ owner: GLOwner) {
        release(owner)
        luma.delete(owner)
        chroma.delete(owner)
        owner.delete(vertexArray, glDeleteVertexArrays)
    }

    /// An input texel's R, G, B as 0…255 integers, by the image's row from the top (textures hold the bottom row first).
    private static let texel = """
        vec3 texel(ivec2 size, int x, int y) {
            return floor(texelFetch(iChannel0, ivec2(x, size.y - 1 - y), 0).rgb * 255.0 + 0.5);
        }

        """

    /// Y = ((66 R + 129 G + 25 B + 128) >> 8) + 16, output row n = image row n.
    static let lumaSource = texel + """
        void mainImage(out vec4 fragColor, in vec2 fragCoord) {
            ivec2 size = textureSize(iChannel0, 0);
            vec3 c = texel(size, int(fragCoord.x), int(fragCoord.y));
            fragColor = vec4((floor((66.0 * c.r + 129.0 * c.g + 25.0 * c.b + 128.0) / 256.0) + 16.0) / 255.0, 0.0, 0.0, 1.0);
        }
        """

    /// U and V of each 2×2 block's rounded mean; NV12: both in one RG
    /// pixel; I420: U in the first half of the rows, V in the second.
    static func chromaSource(nv12: Bool) -> String {
        texel + """
        void mainImage(out vec4 fragColor, in vec2 fragCoord) {
            ivec2 size = textureSize(iChannel0, 0);
            int rows = (size.y + 1) / 2;
            int cx = int(fragCoord.x), cy = int(fragCoord.y);
            bool second = cy >= rows;
            if (second) cy -= rows;
            int x0 = 2 * cx, x1 = min(2 * cx + 1, size.x - 1), y0 = 2 * cy, y1 = min(2 * cy + 1, size.y - 1);
            vec3 sum = texel(size, x0, y0) + texel(size, x1, y0) + texel(size, x0, y1) + texel(size, x1, y1);
            vec3 m = floor((sum + 2.0) / 4.0);
            float u = floor((-38.0 * m.r - 74.0 * m.g + 112.0 * m.b + 128.0) / 256.0) + 128.0;
            float v = floor((112.0 * m.r - 94.0 * m.g - 18.0 * m.b + 128.0) / 256.0) + 128.0;
            fragColor = \(nv12 ? "vec4(u / 255.0, v / 255.0, 0.0, 1.0)" : "vec4((second ? v : u) / 255.0, 0.0, 0.0, 1.0)");
        }
        """
    }
}
