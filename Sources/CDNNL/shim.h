#pragma once
// oneDNN's C API (Debian's libdnnl-dev, OpenMP runtime). Debian ships no pkg-config file for it, so the
// library is linked by name; the header path is the standard /usr/include.
#include <oneapi/dnnl/dnnl.h>
