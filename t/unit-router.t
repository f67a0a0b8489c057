#!/bin/sh
# cmocka unit tests of goim-router's session store (TAP through prove)
exec env CMOCKA_MESSAGE_OUTPUT=TAP "${GOIM_BUILD_DIR:-build}/unit/goim-router/tests/test_session"
