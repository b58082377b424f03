/* EGL (libegl-dev) for the no-X fallback: Mesa's surfaceless platform. */
#include <EGL/egl.h>
#include <EGL/eglext.h>
