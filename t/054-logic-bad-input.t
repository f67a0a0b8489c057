# Bad input on every v2 endpoint: missing or non-numeric parameters, empty
# key or mid lists, an oversize body, the wrong method: a 4xx with goim's
# envelope and a reason, and nothing pushed (a client accepting the
# operation receives nothing).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;

sub tok { '{"mid":5401,"key":"key-5401","room_id":"live://1","accepts":[1000]}' }

sub e { my ($msg) = @_; '{"code":-400,"message":"' . $msg . '"}' . "\n" }

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: the matrix: 400 with a reason, nothing pushed
--- init
Goim::Stack::client('c1', main::tok(), 1);
--- request eval
["POST /goim/push/keys?operation=1000\nx",
 "POST /goim/push/keys?operation=1000&keys=\nx",
 "POST /goim/push/keys?operation=abc&keys=key-5401\nx",
 "POST /goim/push/keys?operation=1.5&keys=key-5401\nx",
 "POST /goim/push/mids?operation=1000\nx",
 "POST /goim/push/mids?operation=1000&mids=,\nx",
 "POST /goim/push/mids?operation=1000&mids=5401,x\nx",
 "POST /goim/push/mids?operation=1000&mids=5401&mids=99999999999999999999\nx",
 "POST /goim/push/mids?operation=9999999999&mids=5401\nx",
 "POST /goim/push/room?type=live&room=1\nx",
 "POST /goim/push/room?operation=0&type=live&room=1\nx",
 "POST /goim/push/room?operation=1000&room=1\nx",
 "POST /goim/push/room?operation=1000&type=live\nx",
 "POST /goim/push/room?operation=1000&type=&room=1\nx",
 "POST /goim/push/all\nx",
 "POST /goim/push/all?operation=x\nx",
 "POST /goim/push/all?operation=1000&speed=-1\nx",
 "POST /goim/push/all?operation=1000&speed=fast\nx",
 "GET /goim/online/top?type=live",
 "GET /goim/online/top?limit=1",
 "GET /goim/online/top?type=live&limit=0",
 "GET /goim/online/top?type=live&limit=ten",
 "GET /goim/online/room?type=live",
 "GET /goim/online/room?rooms=1"]
--- error_code eval
[(400) x 24]
--- response_body eval
[main::e('keys is required'),
 main::e('keys is required'),
 main::e('operation must be an int32'),
 main::e('operation must be an int32'),
 main::e('mids is required'),
 main::e('mids is required'),
 main::e('mids holds \"x\", not an int64'),
 main::e('mids holds \"99999999999999999999\", not an int64'),
 main::e('operation must be an int32'),
 main::e('operation is required'),
 main::e('operation is required'),
 main::e('type and room are required'),
 main::e('type and room are required'),
 main::e('type and room are required'),
 main::e('operation is required'),
 main::e('operation must be an int32'),
 main::e('speed must be a non-negative int32'),
 main::e('speed must be a non-negative int32'),
 main::e('limit must be a positive int32'),
 main::e('type is required'),
 main::e('limit must be a positive int32'),
 main::e('limit must be a positive int32'),
 main::e('rooms is required'),
 main::e('type is required')]
--- goim_receive
c1 none



=== TEST 2: the wrong method: 405 naming the right one; unknown paths: 404
--- init
Goim::Stack::client('c2', main::tok(), 1);
--- request eval
["GET /goim/push/keys?operation=1000&keys=key-5401",
 "GET /goim/push/mids?operation=1000&mids=5401",
 "PUT /goim/push/room?operation=1000&type=live&room=1\nx",
 "DELETE /goim/push/all?operation=1000",
 "POST /goim/online/top?type=live&limit=1\nx",
 "POST /goim/online/room?type=live&rooms=1\nx",
 "POST /goim/online/total\nx",
 "POST /goim/nodes/weighted\nx",
 "POST /goim/nodes/instances\nx",
 "GET /goim/push/nothing",
 "GET /goim/"]
--- error_code eval
[(405) x 9, 404, 404]
--- response_body eval
['{"code":-405,"message":"/push/keys needs POST"}' . "\n",
 '{"code":-405,"message":"/push/mids needs POST"}' . "\n",
 '{"code":-405,"message":"/push/room needs POST"}' . "\n",
 '{"code":-405,"message":"/push/all needs POST"}' . "\n",
 '{"code":-405,"message":"/online/top needs GET"}' . "\n",
 '{"code":-405,"message":"/online/room needs GET"}' . "\n",
 '{"code":-405,"message":"/online/total needs GET"}' . "\n",
 '{"code":-405,"message":"/nodes/weighted needs GET"}' . "\n",
 '{"code":-405,"message":"/nodes/instances needs GET"}' . "\n",
 '{"code":-404,"message":"unknown endpoint \"/goim/push/nothing\""}' . "\n",
 '{"code":-404,"message":"unknown endpoint \"/goim/\""}' . "\n"]
--- goim_receive
c2 none



=== TEST 3: a message larger than client_body_buffer_size: 413 with a reason, nothing pushed
--- config
    location /goim/ {
        client_body_buffer_size 1k;
        client_max_body_size 1m;
        goim_logic_api;
    }
--- init
Goim::Stack::client('c3', main::tok(), 1);
--- request eval
["POST /goim/push/mids?operation=1000&mids=5401\n" . ('x' x 4096),
 "POST /goim/push/keys?operation=1000&keys=key-5401\n" . ('x' x 4096)]
--- error_code eval
[413, 413]
--- response_body eval
['{"code":-413,"message":"message larger than client_body_buffer_size"}' . "\n",
 '{"code":-413,"message":"message larger than client_body_buffer_size"}' . "\n"]
--- goim_receive
c3 none



=== TEST 4: a message at the limit goes through
--- config
    location /goim/ {
        client_body_buffer_size 1k;
        goim_logic_api;
    }
--- init
Goim::Stack::client('c4', main::tok(), 1);
--- request eval
"POST /goim/push/mids?operation=1000&mids=5401\n" . ('y' x 1024)
--- response_body
{"code":0,"message":""}
--- goim_receive eval
"c4 op=1000 seq=0 ver=1 body=" . ('y' x 1024) . "\n"
