# One push end to end through all four parts: a goim client on comet's TCP
# listener authenticates (comet -> logic -> router), a business pushes over
# logic's HTTP API (logic -> router -> job -> comet), the client receives it.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: auth through logic, then a push by mid reaches the client
--- init
Goim::Stack::client('c1', '{"mid":123,"room_id":"live://1000","platform":"web","accepts":[1000]}', 7);
--- request
POST /goim/push/mids?operation=1000&mids=123
hello
--- response_body
{"code":0,"message":""}
--- goim_auth
c1 op=8 seq=7 ver=1 body={"mid":123,"key":"<uuid>","room_id":"live://1000"}
--- goim_receive
c1 op=1000 seq=0 ver=1 body=hello



=== TEST 2: an operation the client did not accept is not delivered
--- init
Goim::Stack::client('c2', '{"mid":124,"platform":"web","accepts":[1000]}', 1);
--- request
POST /goim/push/mids?operation=1001&mids=124
not for you
--- response_body
{"code":0,"message":""}
--- goim_receive
c2 none



=== TEST 3: a push by key, the key chosen by the client
--- init
Goim::Stack::client('c3', '{"mid":125,"key":"key-125-a","accepts":[1000,1002]}', 1);
--- request
POST /goim/push/keys?operation=1002&keys=key-125-a
by key
--- response_body
{"code":0,"message":""}
--- goim_receive
c3 op=1002 seq=0 ver=1 body=by key



=== TEST 4: every device of a mid gets a push by mid
--- init
Goim::Stack::client('d1', '{"mid":200,"accepts":[1000]}', 1);
Goim::Stack::client('d2', '{"mid":200,"accepts":[1000]}', 1);
--- request
POST /goim/push/mids?operation=1000&mids=200
to all devices
--- response_body
{"code":0,"message":""}
--- goim_receive
d1 op=1000 seq=0 ver=1 body=to all devices
d2 op=1000 seq=0 ver=1 body=to all devices



=== TEST 5: a push to a mid nobody is connected as succeeds and sends nothing
--- request
POST /goim/push/mids?operation=1000&mids=999999
nobody
--- response_body
{"code":0,"message":""}



=== TEST 6: a token that is not JSON is refused and the client closed
--- init
Goim::Stack::client('bad', 'not json', 3);
--- request
POST /goim/push/mids?operation=1000&mids=1
x
--- response_body
{"code":0,"message":""}
--- goim_auth
bad none
--- error_log
auth from 127.0.0.1 refused: token is not valid JSON
--- no_error_log
[error]



=== TEST 7: bad push requests get a 4xx with a JSON reason
--- request
POST /goim/push/mids?operation=1000&mids=abc
x
--- error_code: 400
--- response_body
{"code":-400,"message":"mids holds \"abc\", not an int64"}



=== TEST 8: a mid given three times gets the message once
--- init
Goim::Stack::client('e1', '{"mid":130,"accepts":[1000]}', 1);
Goim::Stack::push('/goim/push/mids?operation=1000&mids=130,130&mids=130', 'once') == 1
    or die "push failed\n";
--- request
POST /goim/push/mids?operation=1000&mids=130
after
--- response_body
{"code":0,"message":""}
--- goim_receive
e1 op=1000 seq=0 ver=1 body=once
e1 op=1000 seq=0 ver=1 body=after



=== TEST 9: a key given twice gets the message once
--- init
Goim::Stack::client('e2', '{"mid":131,"key":"key-131","accepts":[1000]}', 1);
Goim::Stack::push('/goim/push/keys?operation=1000&keys=key-131&keys=key-131', 'once') == 1
    or die "push failed\n";
--- request
POST /goim/push/keys?operation=1000&keys=key-131
after
--- response_body
{"code":0,"message":""}
--- goim_receive
e2 op=1000 seq=0 ver=1 body=once
e2 op=1000 seq=0 ver=1 body=after
