#!/bin/sh
# cmocka unit tests of the auth token parser, goim's JSON and HS256 JWTs (TAP through prove)
exec env CMOCKA_MESSAGE_OUTPUT=TAP "${GOIM_BUILD_DIR:-build}/unit/libgoim/tests/test_token"
