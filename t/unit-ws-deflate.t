#!/bin/sh
# cmocka unit tests of the WebSocket permessage-deflate negotiation (TAP through prove)
exec env CMOCKA_MESSAGE_OUTPUT=TAP "${GOIM_BUILD_DIR:-build}/unit/libgoim/tests/test_ws_deflate"
