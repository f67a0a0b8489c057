# The goim client protocol after auth, as goim v2 behaves (and where it is
# weak, better): rooms, ChangeRoom, Sub/Unsub, accept filtering, kicks,
# upstream ops, and bad input closing only the offending connection.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Time;

sub tok { my ($mid, $room, $key) = @_;
    '{"mid":' . $mid . ',"room_id":"' . ($room // '') . '"'
    . ($key ? ',"key":"' . $key . '"' : '') . ',"accepts":[1000]}' }

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: a room push reaches the room's members only, unfiltered by accepts
--- init
Goim::Stack::client('r1', main::tok(401, 'live://7'), 1);
Goim::Stack::client('r2', main::tok(402, 'live://7'), 1, transport => 'ws');
Goim::Stack::client('r3', main::tok(403, 'live://8'), 1);
--- request
POST /goim/push/room?operation=2001&type=live&room=7
to room 7
--- response_body
{"code":0,"message":""}
--- goim_receive
r1 op=2001 seq=0 ver=1 body=to room 7
r2 op=2001 seq=0 ver=1 body=to room 7
r3 none



=== TEST 2: heartbeat replies carry the room's online count
--- init
my $a = Goim::Stack::client('h1', main::tok(410, 'live://9'), 1);
Goim::Stack::client('h2', main::tok(411, 'live://9'), 1);
$a->send_packet(1, 2, 5, '');
--- request
GET /goim/x
--- error_code: 404
--- goim_receive
h1 op=3 seq=5 ver=1 body=\x00\x00\x00\x02



=== TEST 3: ChangeRoom moves a client, and its reply echoes the body
--- init
my $c = Goim::Stack::client('m1', main::tok(420, 'live://10'), 1);
$c->send_packet(1, 12, 6, 'live://11');
$Goim::Stack::Clients{m1}{auth} = $c->wait_for_op(13, Goim::Time::scaled(3));
$c->send_packet(1, 2, 7, '');
--- request
POST /goim/push/room?operation=2002&type=live&room=11
moved
--- response_body
{"code":0,"message":""}
--- goim_auth
m1 op=13 seq=6 ver=1 body=live://11
--- goim_receive
m1 op=3 seq=7 ver=1 body=\x00\x00\x00\x01
m1 op=2002 seq=0 ver=1 body=moved



=== TEST 4: ChangeRoom with an empty body leaves the room
--- init
my $c = Goim::Stack::client('l1', main::tok(421, 'live://12'), 1);
$c->send_packet(1, 12, 2, '');
$Goim::Stack::Clients{l1}{auth} = $c->wait_for_op(13, Goim::Time::scaled(3));
$c->send_packet(1, 2, 3, '');
--- request
POST /goim/push/room?operation=2003&type=live&room=12
nobody here
--- response_body
{"code":0,"message":""}
--- goim_auth
l1 op=13 seq=2 ver=1 body=
--- goim_receive
l1 op=3 seq=3 ver=1 body=\x00\x00\x00\x00
l1 none



=== TEST 5: Sub adds operations, Unsub removes them, a bad list changes nothing
--- init
my $c = Goim::Stack::client('s1', main::tok(430), 1);
$c->send_packet(1, 14, 2, '1001,1002');
$c->send_packet(1, 16, 3, '1000');
$c->send_packet(1, 16, 4, '1001,x');
--- request
POST /goim/push/mids?operation=1001&mids=430
sub 1001
--- response_body
{"code":0,"message":""}
--- goim_receive
s1 op=15 seq=2 ver=1 body=1001,1002
s1 op=17 seq=3 ver=1 body=1000
s1 op=17 seq=4 ver=1 body=1001,x
s1 op=1001 seq=0 ver=1 body=sub 1001



=== TEST 6: after Unsub 1000 a push of 1000 is filtered
--- init
my $c = Goim::Stack::client('u1', main::tok(440), 1);
$c->send_packet(1, 16, 2, '1000');
$c->wait_for_op(17, Goim::Time::scaled(3));
--- request
POST /goim/push/mids?operation=1000&mids=440
filtered
--- response_body
{"code":0,"message":""}
--- goim_receive
u1 none



=== TEST 7: a second connection with the same key kicks the first and keeps its session
--- init
Goim::Stack::client('k1', main::tok(450, '', 'same-key'), 1);
Goim::Stack::client('k2', main::tok(450, '', 'same-key'), 1);
$Goim::Stack::Clients{k1}{client}->wait_closed(Goim::Time::scaled(3));
--- request
POST /goim/push/keys?operation=1000&keys=same-key
to the newer one
--- response_body
{"code":0,"message":""}
--- goim_closed
k1
--- goim_receive
k2 op=1000 seq=0 ver=1 body=to the newer one
--- error_log
kicked by a newer connection with the same key
--- no_error_log
[error]



=== TEST 8: other operations go to logic Receive and are echoed with an empty body
--- init
my $c = Goim::Stack::client('o1', main::tok(460), 1);
$c->send_packet(1, 4, 9, 'hello logic');
--- request
GET /goim/x
--- error_code: 404
--- goim_receive
o1 op=4 seq=9 ver=1 body=
--- error_log
receive from mid 460 key



=== TEST 9: packets before auth are ignored, then auth works
--- init
my $c = Goim::Stack::client('pre', undef, undef);
$c->send_packet(1, 2, 1, '');
$c->send_packet(1, 4, 2, 'early');
$Goim::Stack::Clients{pre}{auth} = $c->auth(main::tok(470), 3);
--- request
GET /goim/x
--- error_code: 404
--- goim_auth
pre op=8 seq=3 ver=1 body={"mid":470,"key":"<uuid>","room_id":""}



=== TEST 10: a header length other than 16 closes the connection, logged
--- init
my $c = Goim::Stack::client('bad1', main::tok(480), 1);
$c->send_raw(pack('l> s> s> l> l>', 16, 15, 1, 2, 1));
--- request
GET /goim/x
--- error_code: 404
--- goim_closed
bad1
--- error_log
closing: header length is not 16



=== TEST 11: an oversize or negative length closes the connection before any body
--- init
my $a = Goim::Stack::client('big', undef, undef);
$a->send_raw(pack('l> s> s> l> l>', 16 + 4097, 16, 1, 7, 1));
my $b = Goim::Stack::client('neg', undef, undef);
$b->send_raw(pack('l> s> s> l> l>', -5, 16, 1, 7, 1));
--- request
GET /goim/x
--- error_code: 404
--- goim_closed
big
neg
--- error_log
closing: packet body too large
closing: negative packet length



=== TEST 12: a client that floods requests is closed, others are unaffected
--- main_config eval
# small socket and queue bounds: the replies it does not read must pile up
my $c = $Goim::Stack::MainConfig;
$c =~ s/(listen 127\.0\.0\.1:\$TEST_NGINX_COMET_PORT)/$1 sndbuf=4k/;
$c =~ s/goim_comet;/goim_comet; goim_comet_queue 8;/;
$c
--- init
my $f = Goim::Stack::client('flood', main::tok(490), 1);
Goim::Stack::client('calm', main::tok(491), 1);
setsockopt($f->sock, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
$f->send_raw(join '', map { Goim::Client::pack_packet(1, 2, $_, 'x' x 2000) } 1 .. 3000);
--- request
POST /goim/push/mids?operation=1000&mids=491
still here
--- response_body
{"code":0,"message":""}
--- goim_closed
flood
--- goim_receive
calm op=1000 seq=0 ver=1 body=still here
--- error_log
request flood



=== TEST 13: no auth within the handshake timeout closes the connection
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/goim_comet;/goim_comet; goim_comet_handshake_timeout 300ms;/;
$c
--- init
Goim::Stack::client('slow', undef, undef);
--- request
GET /goim/x
--- error_code: 404
--- goim_closed
slow
--- error_log
closing: handshake timed out



=== TEST 15: a paced broadcast (speed) reaches every accepting client
--- init
Goim::Stack::client("b$_", main::tok(480 + $_), 1) for 1 .. 3;
--- request
POST /goim/push/all?operation=1000&speed=10
slowly
--- response_body
{"code":0,"message":""}
--- goim_receive
b1 op=1000 seq=0 ver=1 body=slowly
b2 op=1000 seq=0 ver=1 body=slowly
b3 op=1000 seq=0 ver=1 body=slowly
