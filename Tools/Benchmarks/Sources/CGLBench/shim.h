/* GLFW 3.3 (libglfw3-dev) and the OpenGL core entry points, which glvnd's
   libGL exports directly (libgl-dev): GL is called straight from Swift. */
#define GLFW_INCLUDE_NONE
#include <GLFW/glfw3.h>
#define GL_GLEXT_PROTOTYPES 1
#include <GL/glcorearb.h>
