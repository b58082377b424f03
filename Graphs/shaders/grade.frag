// A film-look pass for the animation (shadertoy style: see docs/graph-format.md).
// iChannel0 is the frame; iChannel1 an image other threads may upload (black if none).
// Chromatic aberration that breathes with time, a warm grade, scanlines and a vignette.
void mainImage(out vec4 fragColor, in vec2 fragCoord) {
    vec2 uv = fragCoord / iResolution.xy;
    vec2 centre = uv - 0.5;
    float shift = 0.002 + 0.002 * sin(iTime * 1.7);
    vec3 colour = vec3(
        texture(iChannel0, uv + centre * shift).r,
        texture(iChannel0, uv).g,
        texture(iChannel0, uv - centre * shift).b);
    colour = pow(colour, vec3(0.95, 1.0, 1.08)) * vec3(1.06, 1.0, 0.92);   // warm grade
    colour *= 0.92 + 0.08 * sin(fragCoord.y * 3.14159);                  // scanlines
    colour *= 1.0 - 0.9 * dot(centre, centre);                            // vignette
    colour += texture(iChannel1, uv).rgb * 0.5;
    fragColor = vec4(colour, 1.0);
}
