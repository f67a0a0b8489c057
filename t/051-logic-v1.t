# goim v1.2's push API on its own directive (goim_logic_api_v1): /1/push,
# /1/pushs, /1/push/room, /1/push/all, /1/server/del, /1/count, answered
# with {"ret":1} or {"ret":65535}.  v1 pushes carry operation 5 (v1's
# OP_SEND_SMS_REPLY) unless ?operation= says otherwise; room N is
# "live://N".
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::RouterRpc;

sub tok { my ($mid, $room) = @_;
    '{"mid":' . $mid . ($room ? ',"room_id":"' . $room . '"' : '') . ',"accepts":[5,1000]}' }

$Goim::Stack::Config .= <<'_EOC_';
    location /1/ {
        goim_logic_api_v1;
    }
_EOC_

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: /1/push?uid= reaches every connection of the uid, as operation 5
--- init
Goim::Stack::client('a1', main::tok(5101), 1);
Goim::Stack::client('a2', main::tok(5101), 1);
--- request
POST /1/push?uid=5101
hello v1
--- response_body
{"ret":1}
--- goim_receive
a1 op=5 seq=0 ver=1 body=hello v1
a2 op=5 seq=0 ver=1 body=hello v1



=== TEST 2: /1/pushs: the JSON text of "m" goes to every uid of "u"
--- init
Goim::Stack::client('b1', main::tok(5201), 1);
Goim::Stack::client('b2', main::tok(5202), 1);
Goim::Stack::client('b3', main::tok(5203), 1);
--- request
POST /1/pushs
{"m": {"text": "hi, \"all\"", "n": [1, 2]}, "u": [5201, 5202, 777]}
--- response_body
{"ret":1}
--- goim_receive
b1 op=5 seq=0 ver=1 body={"text": "hi, \"all\"", "n": [1, 2]}
b2 op=5 seq=0 ver=1 body={"text": "hi, \"all\"", "n": [1, 2]}
b3 none



=== TEST 3: /1/push/room?rid=: room N is live://N
--- init
Goim::Stack::client('r1', main::tok(5301, 'live://53'), 1);
Goim::Stack::client('r2', main::tok(5302, 'live://54'), 1);
--- request
POST /1/push/room?rid=53
to room 53
--- response_body
{"ret":1}
--- goim_receive
r1 op=5 seq=0 ver=1 body=to room 53
r2 none



=== TEST 4: /1/push/all reaches everyone; ?operation= is honoured
--- init
Goim::Stack::client('all1', main::tok(5401), 1);
Goim::Stack::client('all2', main::tok(5402, 'live://55'), 1);
--- request
POST /1/push/all?operation=1000
everyone
--- response_body
{"ret":1}
--- goim_receive
all1 op=1000 seq=0 ver=1 body=everyone
all2 op=1000 seq=0 ver=1 body=everyone



=== TEST 5: /1/count?type=room: v1's rooms with their counts
--- init
Goim::Stack::client('k1', main::tok(5501, 'live://61'), 1);
Goim::Stack::client('k2', main::tok(5502, 'live://61'), 1);
Goim::Stack::client('k3', main::tok(5503, 'live://62'), 1);
Goim::Stack::client('k4', main::tok(5504, 'other://63'), 1);
--- request
GET /1/count?type=room
--- response_body_like: ^\{"ret":1,"data":\[(\{"RoomId":\d+,"Count":\d+\},)*\{"RoomId":61,"Count":2\},\{"RoomId":62,"Count":1\}\]\}$



=== TEST 6: /1/count?type=server: sessions per comet
--- init
Goim::RouterRpc::comet_renew($ENV{TEST_NGINX_ROUTER_PORT}, id => 'comet-v1');
--- request
GET /1/count?type=server
--- response_body_like: ^\{"ret":1,"data":\[\{"Server":"comet-test","Count":[1-9]\d*\},\{"Server":"comet-v1","Count":0\}\]\}$



=== TEST 7: /1/count of another type: success, no data
--- request
GET /1/count?type=foo
--- response_body
{"ret":1}



=== TEST 8: /1/server/del drops a comet and its sessions
--- init
Goim::RouterRpc::comet_renew($ENV{TEST_NGINX_ROUTER_PORT}, id => 'comet-gone');
--- request
POST /1/server/del?server=comet-gone
--- response_body
{"ret":1}
--- no_error_log
[error]



=== TEST 9: after /1/server/del the comet is no longer counted
--- request
GET /1/count?type=server
--- response_body_unlike: comet-gone



=== TEST 10: bad input: 4xx, {"ret":65535} and why
--- request eval
["POST /1/push\nx", "POST /1/push?uid=abc\nx", "POST /1/pushs\n{\"m\":1}",
 "POST /1/pushs\n{\"m\":1,\"u\":[]}", "POST /1/pushs\n{\"u\":[1]}",
 "POST /1/pushs\nnot json", "POST /1/pushs\n{\"m\":1,\"u\":[\"a\"]}",
 "POST /1/push/room?rid=x\nx", "POST /1/push/room\nx", "POST /1/server/del",
 "GET /1/push?uid=1", "POST /1/count?type=room", "GET /1/nothing"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 405, 405, 404]
--- response_body eval
['{"ret":65535,"message":"uid must be an int64"}' . "\n",
 '{"ret":65535,"message":"uid must be an int64"}' . "\n",
 '{"ret":65535,"message":"the body needs \"u\", a non-empty list of uids"}' . "\n",
 '{"ret":65535,"message":"the body needs \"u\", a non-empty list of uids"}' . "\n",
 '{"ret":65535,"message":"the body needs \"m\", the message"}' . "\n",
 '{"ret":65535,"message":"the body is not a JSON object"}' . "\n",
 '{"ret":65535,"message":"u must be an array of int64 uids"}' . "\n",
 '{"ret":65535,"message":"rid must be an int32"}' . "\n",
 '{"ret":65535,"message":"rid must be an int32"}' . "\n",
 '{"ret":65535,"message":"server is required"}' . "\n",
 '{"ret":65535,"message":"/push needs POST"}' . "\n",
 '{"ret":65535,"message":"/count needs GET"}' . "\n",
 '{"ret":65535,"message":"unknown endpoint \"/1/nothing\""}' . "\n"]



=== TEST 11: /1/pushs: a uid listed three times gets the message once
--- init
Goim::Stack::client('v1dup', main::tok(5601), 1);
Goim::Stack::push('/1/pushs', '{"m":"once","u":[5601,5601,5601]}') == 1
    or die "push failed\n";
--- request
POST /1/push?uid=5601
after
--- response_body
{"ret":1}
--- goim_receive
v1dup op=5 seq=0 ver=1 body="once"
v1dup op=5 seq=0 ver=1 body=after
