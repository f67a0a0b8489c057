#!/bin/sh
# cmocka unit tests of the push API's argument parsers (TAP through prove)
exec env CMOCKA_MESSAGE_OUTPUT=TAP "${GOIM_BUILD_DIR:-build}/unit/libgoim/tests/test_args"
