// A trail (seed 002's shader feedback): each frame is drawn over what the
// pass drew before, faded, so a moving object leaves a fading wake.
// iChannel0 is the frame; iChannel2 the pass's own previous output
// (transparent black on the first frame and after a shaderFeedback reset).
void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.xy;
    vec4 now = texture(iChannel0, uv);
    vec4 before = texture(iChannel2, uv) * vec4(0.86, 0.9, 0.96, 0.92);
    fragColor = max(now, before);
}
