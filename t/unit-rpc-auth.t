#!/bin/sh
# cmocka unit tests of the daemons' RPC channel with a secret (TAP through prove)
exec env CMOCKA_MESSAGE_OUTPUT=TAP "${GOIM_BUILD_DIR:-build}/unit/libgoim/tests/test_rpc_auth"
