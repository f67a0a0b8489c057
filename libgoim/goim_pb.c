/*
 * Builds protoc-c's output for goim.proto with hidden visibility: NGINX
 * loads modules RTLD_GLOBAL, and the comet and logic modules each carry
 * a copy of these descriptors; hidden, neither copy can interpose on the
 * other.  protobuf-c's own header comes first so the library's functions
 * keep their default visibility.
 */

#include <protobuf-c/protobuf-c.h>

#pragma GCC visibility push(hidden)
#include "goim.pb-c.c"
#pragma GCC visibility pop
