# With goim_logic_jwt_secret_file the token's signed claims bound what a
# client may do after auth: op 12 enters only room_id and the rooms of the
# "rooms" claim ("prefix*" patterns too), op 14 adds only accepts and the
# operations of the "ops" claim.  Anything else closes the connection,
# logged and counted (token_refused on the status page).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Jwt;

our $Full = Goim::Jwt::token('{"mid":1600,"room_id":"live://1","accepts":[1000],'
                             . '"rooms":["live://2","chat://*"],"ops":[2000,2001]}');
our $Bare = Goim::Jwt::token('{"mid":1601,"room_id":"live://5","accepts":[1000,1001]}');

Goim::Jwt::setup();
Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: the rooms and operations the token allows are granted
--- init
my $c = Goim::Stack::client('full', $main::Full, 1);
$c->send_packet(1, 12, 2, 'live://2');
$c->send_packet(1, 12, 3, 'chat://lobby');
$c->send_packet(1, 14, 4, '2000,1000');
$c->send_packet(1, 16, 5, '2001,9999');
$c->send_packet(1, 12, 6, 'live://1');
$c->send_packet(1, 12, 7, '');
--- request
POST /goim/push/mids?operation=2000&mids=1600
granted
--- response_body
{"code":0,"message":""}
--- goim_receive
full op=13 seq=2 ver=1 body=live://2
full op=13 seq=3 ver=1 body=chat://lobby
full op=15 seq=4 ver=1 body=2000,1000
full op=17 seq=5 ver=1 body=2001,9999
full op=13 seq=6 ver=1 body=live://1
full op=13 seq=7 ver=1 body=
full op=2000 seq=0 ver=1 body=granted



=== TEST 2: a room outside the token closes the connection, logged and counted
--- init
my $c = Goim::Stack::client('room', $main::Full, 1);
$c->send_packet(1, 12, 2, 'live://3');
$c->wait_closed(5);
--- request
GET /status
--- response_body_like chomp
"token_refused":1,
--- goim_closed
room
--- error_log
room "live://3" is not allowed by the token of mid 1600
closing: change room refused by the token



=== TEST 3: an operation outside the token closes the connection, logged
--- init
my $c = Goim::Stack::client('op', $main::Full, 1);
$c->send_packet(1, 14, 2, '2001,3000');
--- request
GET /goim/x
--- error_code: 404
--- goim_closed
op
--- error_log
sub of operation 3000 is not allowed by the token of mid 1600
closing: sub refused by the token



=== TEST 4: without the claims a token allows its room_id and accepts only
--- init
my $c = Goim::Stack::client('bare', $main::Bare, 1);
$c->send_packet(1, 16, 2, '1001');
$c->send_packet(1, 14, 3, '1001');
$c->send_packet(1, 12, 4, 'live://5');
$c->wait_for_op(13, 5);
my $d = Goim::Stack::client('bare2', $main::Bare, 1);
$d->send_packet(1, 12, 2, 'live://6');
my $e = Goim::Stack::client('bare3', $main::Bare, 1);
$e->send_packet(1, 14, 2, '2000');
--- request
GET /goim/x
--- error_code: 404
--- goim_receive
bare op=17 seq=2 ver=1 body=1001
bare op=15 seq=3 ver=1 body=1001
--- goim_closed
bare2
bare3
--- error_log
room "live://6" is not allowed by the token of mid 1601
sub of operation 2000 is not allowed by the token of mid 1601
