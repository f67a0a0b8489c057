# Two goim-routers behind one logic: each mid's sessions live on the router
# the ketama ring gives it (router "1" is the first goim_logic_router,
# "2" the second; docs/ketama.md), pushes by mid ask each mid's router,
# pushes by key ask both, online counts are summed over both.
#
# From the ring's fixed vectors (libgoim/tests/test_ketama.c): mids 2, 5,
# 124 belong to router 1; mids 4, 6, 125 to router 2.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use HTTP::Tiny;
use Goim::Time;

our $Router2;

sub tok { my ($mid, $room, $key) = @_;
    '{"mid":' . $mid . ($room ? ',"room_id":"' . $room . '"' : '')
    . ($key ? ',"key":"' . $key . '"' : '') . ',"accepts":[1000]}' }

# a router's counters, from goim-router --stats
sub stats {
    my $port = shift;
    my $bin = Goim::Daemon::build_dir() . '/goim-router';
    my %h = map { /^(\w+)=(-?\d+)$/ ? ($1, $2) : () } `$bin --stats 127.0.0.1:$port`;
    return \%h;
}

sub sessions { stats($_[0])->{sessions} }

Goim::Stack::setup();

$Router2 = Goim::Daemon->start('router', name => 'router2', no_env => 1);
$ENV{TEST_NGINX_ROUTER2_PORT} = $Router2->port;
$Goim::Stack::MainConfig =~ s/(goim_logic_router [^;]+;)/$1\n    goim_logic_router 127.0.0.1:\$TEST_NGINX_ROUTER2_PORT;/
    or die "no goim_logic_router in the stack's config\n";

run_tests();
$Router2->stop;
Goim::Stack::teardown();

__DATA__

=== TEST 1: each session is stored on its mid's router only
--- init
my ($r1, $r2) = ($ENV{TEST_NGINX_ROUTER_PORT}, $ENV{TEST_NGINX_ROUTER2_PORT});
my ($n1, $n2) = (main::sessions($r1), main::sessions($r2));
Goim::Stack::client('a', main::tok(2), 1);
Goim::Stack::client('b', main::tok(4), 1);
Goim::Stack::client('b2', main::tok(4), 1);
Test::More::is(main::sessions($r1), $n1 + 1, 'TEST 1 - mid 2 on router 1');
Test::More::is(main::sessions($r2), $n2 + 2, 'TEST 1 - mid 4 (two devices) on router 2');
--- request
POST /goim/push/mids?operation=1000&mids=2,4
to both routers' mids
--- response_body
{"code":0,"message":""}
--- goim_receive
a op=1000 seq=0 ver=1 body=to both routers' mids
b op=1000 seq=0 ver=1 body=to both routers' mids
b2 op=1000 seq=0 ver=1 body=to both routers' mids



=== TEST 2: a push by mid asks only that mid's router
--- init
Goim::Stack::client('c', main::tok(5), 1);
Goim::Stack::client('d', main::tok(6), 1);
--- request
POST /goim/push/mids?operation=1000&mids=6
only d
--- response_body
{"code":0,"message":""}
--- goim_receive
d op=1000 seq=0 ver=1 body=only d
c none



=== TEST 3: a push by key finds keys on either router
--- init
Goim::Stack::client('k1', main::tok(124, undef, 'key-124'), 1);
Goim::Stack::client('k2', main::tok(125, undef, 'key-125'), 1);
--- request
POST /goim/push/keys?operation=1000&keys=key-124&keys=key-125&keys=nobody
by key
--- response_body
{"code":0,"message":""}
--- goim_receive
k1 op=1000 seq=0 ver=1 body=by key
k2 op=1000 seq=0 ver=1 body=by key



=== TEST 4: room counts are summed over the routers
--- init
Goim::Stack::client('r1', main::tok(2, 'shard://1'), 1);
Goim::Stack::client('r2', main::tok(4, 'shard://1'), 1);
Goim::Stack::client('r3', main::tok(6, 'shard://2'), 1);
--- request
GET /goim/online/room?type=shard&rooms=1&rooms=2
--- response_body
{"code":0,"message":"","data":{"1":2,"2":1}}



=== TEST 5: top rooms are ranked on the sums, not on each router's top
--- init
Goim::Stack::client('t1', main::tok(2, 'top://a'), 1);
Goim::Stack::client('t2', main::tok(5, 'top://a'), 1);
Goim::Stack::client('t3', main::tok(124, 'top://b'), 1);
Goim::Stack::client('t4', main::tok(4, 'top://b'), 1);
Goim::Stack::client('t5', main::tok(6, 'top://b'), 1);
--- request
GET /goim/online/top?type=top&limit=1
--- response_body
{"code":0,"message":"","data":[{"room_id":"b","count":3}]}



=== TEST 6: a disconnect goes to the mid's router
--- init
my $r2 = $ENV{TEST_NGINX_ROUTER2_PORT};
Goim::Stack::client('x', main::tok(125, 'gone://1'), 1);
my $n = main::sessions($r2);
$Goim::Stack::Clients{x}{client}->close;
Goim::Time::wait_until(sub { main::sessions($r2) == $n - 1 }, 5);
Test::More::is(main::sessions($r2), $n - 1, 'TEST 6 - removed from router 2');
--- request
GET /goim/online/room?type=gone&rooms=1
--- response_body
{"code":0,"message":"","data":{"1":0}}



=== TEST 7: the comet registers with both routers; totals are summed
--- init
my $sum = main::sessions($ENV{TEST_NGINX_ROUTER_PORT}) + main::sessions($ENV{TEST_NGINX_ROUTER2_PORT});
my $port = Test::Nginx::Socket::server_port();
my $body = HTTP::Tiny->new(timeout => Goim::Time::scaled(3))->get("http://127.0.0.1:$port/goim/online/total")->{content};
Test::More::like($body, qr/"session_count":$sum\}/, 'TEST 7 - session_count is the sum of both routers');
Test::More::is(main::stats($ENV{TEST_NGINX_ROUTER_PORT})->{comets}, 1, 'TEST 7 - router 1 has the comet');
Test::More::is(main::stats($ENV{TEST_NGINX_ROUTER2_PORT})->{comets}, 1, 'TEST 7 - router 2 has the comet');
--- request
GET /goim/online/total
--- response_body_like
^\{"code":0,"message":"","data":\{"conn_count":\d+,"ip_count":\d+,"session_count":\d+\}\}$
