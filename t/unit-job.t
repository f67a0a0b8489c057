#!/bin/sh
# cmocka unit tests of goim-job's offset tracking (TAP through prove)
exec env CMOCKA_MESSAGE_OUTPUT=TAP "${GOIM_BUILD_DIR:-build}/unit/goim-job/tests/test_offsets"
