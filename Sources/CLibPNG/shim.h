/* Debian's libpng (libpng-dev), used through its simplified png_image API. */
#include <png.h>
