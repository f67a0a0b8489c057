# Presence through logic: goim-router keeps exact counts per room as
# sessions come, move (ChangeRoom) and go, and logic serves them as goim
# v2's GET /goim/online/{room,top,total}.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Time;
use HTTP::Tiny;
use Goim::RouterRpc;

sub tok { my ($mid, $room) = @_;
    '{"mid":' . $mid . ($room ? ',"room_id":"' . $room . '"' : '') . ',"accepts":[1000]}' }

# session_count from /goim/online/total, asked directly
sub total {
    my $port = Test::Nginx::Socket::server_port();
    my $r = HTTP::Tiny->new(timeout => Goim::Time::scaled(3))->get("http://127.0.0.1:$port/goim/online/total");
    $r->{content} =~ /"session_count":(\d+)/ or die "no total: $r->{content}\n";
    return $1;
}

# waits (up to 5 s, scaled) until GET path answers with a body matching
# re: the moves and disconnects reach router a moment after the client's
# packet
sub wait_for {
    my ($path, $re) = @_;
    my $port = Test::Nginx::Socket::server_port();
    return Goim::Time::wait_until(sub {
        HTTP::Tiny->new(timeout => Goim::Time::scaled(3))->get("http://127.0.0.1:$port$path")
            ->{content} =~ $re;
    }, 5) ? 1 : 0;
}

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: room counts follow the sessions, 0 for an empty room
--- init
Goim::Stack::client('a1', main::tok(3101, 'live://31'), 1);
Goim::Stack::client('a2', main::tok(3102, 'live://31'), 1);
Goim::Stack::client('a3', main::tok(3103, 'live://32'), 1);
Goim::Stack::client('a4', main::tok(3104), 1);
--- request
GET /goim/online/room?type=live&rooms=31&rooms=32&rooms=33
--- response_body
{"code":0,"message":"","data":{"31":2,"32":1,"33":0}}



=== TEST 2: top rooms of a type, most members first, cut to the limit
--- init
Goim::Stack::client('t1', main::tok(3111, 'topa://1'), 1);
Goim::Stack::client('t2', main::tok(3112, 'topa://1'), 1);
Goim::Stack::client('t3', main::tok(3113, 'topa://2'), 1);
--- request
GET /goim/online/top?type=topa&limit=1
--- response_body
{"code":0,"message":"","data":[{"room_id":"1","count":2}]}



=== TEST 3: the type is a prefix, as in goim; other types are not counted
--- init
Goim::Stack::client('p1', main::tok(3121, 'topb://1'), 1);
Goim::Stack::client('p2', main::tok(3122, 'topbx://2'), 1);
Goim::Stack::client('p3', main::tok(3123, 'topb://3'), 1);
Goim::Stack::client('p4', main::tok(3124, 'topb://3'), 1);
Goim::Stack::client('p5', main::tok(3125, 'topc://4'), 1);
--- request
GET /goim/online/top?type=topb&limit=10
--- response_body
{"code":0,"message":"","data":[{"room_id":"3","count":2},{"room_id":"1","count":1},{"room_id":"2","count":1}]}



=== TEST 4: a type nobody is in gives an empty list
--- request
GET /goim/online/top?type=radio&limit=10
--- response_body
{"code":0,"message":"","data":[]}



=== TEST 5: ChangeRoom moves the session and its counts
--- init
my $c = Goim::Stack::client('c1', main::tok(3131, 'chg://1'), 1);
Goim::Stack::client('c2', main::tok(3132, 'chg://1'), 1);
$c->send_packet(1, 12, 6, 'chg://2');
$c->wait_for_op(13, 3) or die "no ChangeRoom reply\n";
main::wait_for('/goim/online/room?type=chg&rooms=2', qr/"2":1/);
--- request
GET /goim/online/room?type=chg&rooms=1&rooms=2
--- response_body
{"code":0,"message":"","data":{"1":1,"2":1}}



=== TEST 6: a disconnect takes the session out of its room
--- init
Goim::Stack::client('d1', main::tok(3141, 'dis://1'), 1);
Goim::Stack::client('d2', main::tok(3142, 'dis://1'), 1)->close;
main::wait_for('/goim/online/room?type=dis&rooms=1', qr/"1":1/);
--- request
GET /goim/online/room?type=dis&rooms=1&rooms=1
--- response_body
{"code":0,"message":"","data":{"1":1}}



=== TEST 7: totals: session_count grows with each session router holds
--- init
my $before = main::total();
Goim::Stack::client('s1', main::tok(3151), 1);
Goim::Stack::client('s2', main::tok(3152, 'tot://1'), 1);
Test::More::is(main::total(), $before + 2, 'TEST 7 - two more sessions');
--- request
GET /goim/online/total
--- response_body_like
^\{"code":0,"message":"","data":\{"conn_count":\d+,"ip_count":\d+,"session_count":\d+\}\}$



=== TEST 8: top without a type
--- request
GET /goim/online/top?limit=3
--- error_code: 400
--- response_body
{"code":-400,"message":"type is required"}



=== TEST 9: top with a limit that is not a positive int32
--- request
GET /goim/online/top?type=live&limit=0
--- error_code: 400
--- response_body
{"code":-400,"message":"limit must be a positive int32"}



=== TEST 10: top without a limit
--- request
GET /goim/online/top?type=live
--- error_code: 400
--- response_body
{"code":-400,"message":"limit must be a positive int32"}



=== TEST 11: room without rooms
--- request
GET /goim/online/room?type=live
--- error_code: 400
--- response_body
{"code":-400,"message":"rooms is required"}



=== TEST 12: room without a type
--- request
GET /goim/online/room?rooms=1
--- error_code: 400
--- response_body
{"code":-400,"message":"type is required"}



=== TEST 13: online endpoints only read: POST is refused
--- request
POST /goim/online/total
x
--- error_code: 405
--- response_body
{"code":-405,"message":"/online/total needs GET"}



=== TEST 14: room names are JSON-escaped
--- init
Goim::Stack::client('q1', main::tok(3161, 'esc://a\\"b'), 1);
--- request
GET /goim/online/top?type=esc&limit=10
--- response_body
{"code":0,"message":"","data":[{"room_id":"a\"b","count":1}]}



=== TEST 15: router answers each session once, however often a mid or key is asked
--- init
Goim::Stack::client('u1', '{"mid":3171,"key":"key-3171","accepts":[1000]}', 1);
my $port = $ENV{TEST_NGINX_ROUTER_PORT};
Test::More::is(join(',', Goim::RouterRpc::sessions_by_mids($port, 3171, 3171, 3171)),
               'key-3171', 'SessionsByMids 3171,3171,3171: one session');
Test::More::is(join(',', Goim::RouterRpc::sessions_by_keys($port, 'key-3171', 'key-3171')),
               'key-3171', 'SessionsByKeys key-3171 twice: one session');
--- request
GET /goim/online/total
--- response_body_like: "session_count":\d+
