import CGLFW
import QueueGraphCore
import QueueGraphRender

/// The output pack conversion on the render thread (seed 002): an RGBA
/// texture becomes I420 or NV12 planes by two shader passes, luma and
/// chroma, read into a pack buffer as the frame's planes lie in its buffer
/// (rows padded to 64 bytes). Each output pixel is four plane bytes
/// (RGBA8 targets a quarter of a plane row wide), so a pass runs a quarter
/// of the fragments and the read takes GL's RGBA path.
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
    /// Luma and chroma targets: four bytes of a plane row per pixel, its padded stride wide; chroma holds U rows then V rows (I420) or the U, V pairs (NV12).
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
        for (w, h) in Self.targetSizes(width: width, height: height, format: format) {
            let texture = owner.makeTexture(width: w, height: h)
            let framebuffer = owner.make(glGenFramebuffers)
            glBindFramebuffer(GLenum(GL_FRAMEBUFFER), framebuffer)
            glFramebufferTexture2D(GLenum(GL_FRAMEBUFFER), GLenum(GL_COLOR_ATTACHMENT0), GLenum(GL_TEXTURE_2D), texture, 0)
            targets.append((texture, framebuffer))
        }
        glBindFramebuffer(GLenum(GL_FRAMEBUFFER), 0)
        size = (width, height)
    }

    /// The targets' sizes in RGBA pixels: luma, then chroma (I420: the U
    /// plane's rows, then the V plane's, which follow each other in the frame).
    private static func targetSizes(width: Int, height: Int, format: PixelFormat) -> [(Int, Int)] {
        let layout = Frame.Layout.packed(width: width, height: height, format: format)
        let ch = (height + 1) / 2
        return [(layout.strides.0 / 4, height), (layout.strides.1 / 4, format == .nv12 ? ch : 2 * ch)]
    }

    /// Converts `texture` (the frame's image, `size`) and reads the planes
    /// into the pack buffer bound to `GL_PIXEL_PACK_BUFFER`, from offset 0:
    /// each target's rows are the plane rows, padding included.
    func convert(_ texture: GLuint) {
        draw(texture)
        let layout = Frame.Layout.packed(width: size.width, height: size.height, format: format)
        let offsets = [0, layout.offsets.1 - Frame.headerSize]
        for (i, (w, h)) in Self.targetSizes(width: size.width, height: size.height, format: format).enumerated() {
            glBindFramebuffer(GLenum(GL_READ_FRAMEBUFFER), targets[i].framebuffer)
            glReadPixels(0, 0, GLsizei(w), GLsizei(h), GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), UnsafeMutableRawPointer(bitPattern: offsets[i]))
        }
    }

    /// Both passes, each into its target.
    private func draw(_ texture: GLuint) {
        glActiveTexture(GLenum(GL_TEXTURE0))
        glBindTexture(GLenum(GL_TEXTURE_2D), texture)
        glBindVertexArray(vertexArray)
        let sizes = Self.targetSizes(width: size.width, height: size.height, format: format)
        for (i, (program, (w, h))) in zip([luma, chroma], sizes).enumerated() {
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

    /// Y = ((66 R + 129 G + 25 B + 128) >> 8) + 16 of four pixels in a row
    /// (past the image's edge: its last pixel, into the row's padding);
    /// output row n = image row n.
    static let lumaSource = texel + """
        float luma(ivec2 size, int x, int y) {
            vec3 c = texel(size, min(x, size.x - 1), y);
            return floor((66.0 * c.r + 129.0 * c.g + 25.0 * c.b + 128.0) / 256.0) + 16.0;
        }
        void mainImage(out vec4 fragColor, in vec2 fragCoord) {
            ivec2 size = textureSize(iChannel0, 0);
            int x = 4 * int(fragCoord.x), y = int(fragCoord.y);
            fragColor = vec4(luma(size, x, y), luma(size, x + 1, y), luma(size, x + 2, y), luma(size, x + 3, y)) / 255.0;
        }
        """

    /// U and V of each 2×2 block's rounded mean (blocks past the image's
    /// edge: its last one). NV12: two blocks' U, V pairs per pixel; I420:
    /// four blocks' U in the first half of the rows, their V in the second.
    static func chromaSource(nv12: Bool) -> String {
        texel + """
        vec2 chroma(ivec2 size, int cx, int cy) {
            cx = min(cx, (size.x + 1) / 2 - 1);
            int x0 = 2 * cx, x1 = min(2 * cx + 1, size.x - 1), y0 = 2 * cy, y1 = min(2 * cy + 1, size.y - 1);
            vec3 sum = texel(size, x0, y0) + texel(size, x1, y0) + texel(size, x0, y1) + texel(size, x1, y1);
            vec3 m = floor((sum + 2.0) / 4.0);
            return vec2(floor((-38.0 * m.r - 74.0 * m.g + 112.0 * m.b + 128.0) / 256.0) + 128.0,
                        floor((112.0 * m.r - 94.0 * m.g - 18.0 * m.b + 128.0) / 256.0) + 128.0);
        }
        void mainImage(out vec4 fragColor, in vec2 fragCoord) {
            ivec2 size = textureSize(iChannel0, 0);
            int cx = int(fragCoord.x), cy = int(fragCoord.y);
        \(nv12 ? """
            fragColor = vec4(chroma(size, 2 * cx, cy), chroma(size, 2 * cx + 1, cy)) / 255.0;
        """ : """
            int rows = (size.y + 1) / 2;
            int plane = cy >= rows ? 1 : 0;
            cy -= plane * rows;
            fragColor = vec4(chroma(size, 4 * cx, cy)[plane], chroma(size, 4 * cx + 1, cy)[plane],
                             chroma(size, 4 * cx + 2, cy)[plane], chroma(size, 4 * cx + 3, cy)[plane]) / 255.0;
        """)
        }
        """
    }
}
