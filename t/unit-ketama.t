#!/bin/sh
# cmocka unit tests of the ketama ring logic shards mids with (TAP through prove)
exec env CMOCKA_MESSAGE_OUTPUT=TAP "${GOIM_BUILD_DIR:-build}/unit/libgoim/tests/test_ketama"
