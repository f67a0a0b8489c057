# goim over WebSocket: the upgrade, the frames, and pushes as goim v2 sends
# them (one binary frame per packet, a batch with its outer op-9 header).
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client qw(pack_packet ws_frame);
use Goim::Time;

our $Token = '{"mid":300,"room_id":"live://1","platform":"web","accepts":[1000]}';

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: auth over WebSocket, a push by mid arrives as one op-9 frame
--- init
Goim::Stack::client('w1', $main::Token, 5, transport => 'ws');
--- request
POST /goim/push/mids?operation=1000&mids=300
over ws
--- response_body
{"code":0,"message":""}
--- goim_auth
w1 op=8 seq=5 ver=1 body={"mid":300,"key":"<uuid>","room_id":"live://1"}
--- goim_receive
w1 op=1000 seq=0 ver=1 body=over ws
--- goim_ws_frames
w1 2 2



=== TEST 2: the auth frame sent in the same packet as the handshake is not lost
--- init
Goim::Stack::client('early', undef, undef, transport => 'ws',
    early => Goim::Client::ws_frame(2, Goim::Client::pack_packet(1, 7, 42, $main::Token)));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_receive
early op=8 seq=42 ver=1 body={"mid":300,"key":"<uuid>","room_id":"live://1"}



=== TEST 3: a message fragmented over three frames is reassembled
--- init
my $p = Goim::Client::pack_packet(1, 7, 9, $main::Token);
my $c = Goim::Stack::client('frag', undef, undef, transport => 'ws');
$c->send_raw(Goim::Client::ws_frame(1, substr($p, 0, 10), fin => 0)
             . Goim::Client::ws_frame(0, substr($p, 10, 20), fin => 0)
             . Goim::Client::ws_frame(9, 'ping!')
             . Goim::Client::ws_frame(0, substr($p, 30), fin => 1));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_receive
frag op=8 seq=9 ver=1 body={"mid":300,"key":"<uuid>","room_id":"live://1"}
--- goim_ws_frames
frag 10 2



=== TEST 4: an unmasked client frame closes the connection with 1002
--- init
my $c = Goim::Stack::client('unmasked', undef, undef, transport => 'ws');
$c->send_raw(Goim::Client::ws_frame(2, Goim::Client::pack_packet(1, 7, 1, $main::Token), mask => 0));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_closed
unmasked 1002
--- error_log
closing with status 1002: unmasked client frame



=== TEST 5: a packet length that differs from its frame length closes with 1002
--- init
my $c = Goim::Stack::client('mismatch', undef, undef, transport => 'ws');
$c->send_raw(Goim::Client::ws_frame(2, Goim::Client::pack_packet(1, 7, 1, $main::Token) . 'extra'));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_closed
mismatch 1002
--- error_log
packet length differs from its frame length



=== TEST 6: a frame larger than one packet closes with 1009 before its payload
--- init
my $c = Goim::Stack::client('big', undef, undef, transport => 'ws');
$c->send_raw(substr(Goim::Client::ws_frame(2, 'x' x 5000), 0, 20));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_closed
big 1009
--- error_log
closing with status 1009: frame too large



=== TEST 7: the close handshake echoes the client's status
--- init
my $c = Goim::Stack::client('bye', $main::Token, 1, transport => 'ws');
$c->send_raw(Goim::Client::ws_frame(8, pack('n', 1000)));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_auth
bye op=8 seq=1 ver=1 body={"mid":300,"key":"<uuid>","room_id":"live://1"}
--- goim_closed
bye 1000



=== TEST 8: heartbeat over WebSocket
--- init
my $c = Goim::Stack::client('hb', $main::Token, 1, transport => 'ws');
$c->send_packet(1, 2, 77, '');
--- request
GET /goim/nothing
--- error_code: 404
--- goim_receive
hb op=3 seq=77 ver=1 body=\x00\x00\x00\x01



=== TEST 9: a bad upgrade gets 400 with the reason
--- request
GET /sub
--- more_headers
Upgrade: websocket
Connection: Upgrade
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
Sec-WebSocket-Version: 8
--- error_code: 400
--- response_headers
Sec-WebSocket-Version: 13
--- response_body
Sec-WebSocket-Version must be 13
--- error_log
WebSocket upgrade refused



=== TEST 10: an upgrade without a key gets 400
--- request
GET /sub
--- more_headers
Upgrade: websocket
Connection: Upgrade
Sec-WebSocket-Version: 13
--- error_code: 400
--- response_body
Sec-WebSocket-Key is missing or not 16 bytes in base64
--- error_log
WebSocket upgrade refused



=== TEST 11: RFC 6455's sample key gets its sample accept value
--- raw_request eval
"GET /sub HTTP/1.1\r
Host: localhost\r
Upgrade: websocket\r
Connection: Upgrade\r
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
Sec-WebSocket-Version: 13\r
\r
"
--- error_code: 101
--- response_headers
Upgrade: websocket
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
--- timeout eval
# nginx keeps the connection: the 101 is read until then (longer for a slow run)
Goim::Time::scaled(0.5)
--- abort



=== TEST 12: close frames a server must not echo get 1002 (RFC 6455 §7.4), a reason that is not UTF-8 gets 1007 (§8.1)
--- init
my %frames = (
    c0 => pack('n', 0), c999 => pack('n', 999), c1004 => pack('n', 1004),
    c1005 => pack('n', 1005), c1006 => pack('n', 1006),
    c1015 => pack('n', 1015), c2000 => pack('n', 2000),
    c5000 => pack('n', 5000), one => "\x03",
    utf8 => pack('n', 1000) . "\xce\xba\xed\xa0\x80",
    c4000 => pack('n', 4000) . 'app reason',
    empty => '',
);
for my $name (sort keys %frames) {
    my $c = Goim::Stack::client($name, undef, undef, transport => 'ws');
    $c->send_raw(Goim::Client::ws_frame(8, $frames{$name}));
}
--- request
GET /goim/nothing
--- error_code: 404
--- goim_closed
c0 1002
c999 1002
c1004 1002
c1005 1002
c1006 1002
c1015 1002
c2000 1002
c5000 1002
one 1002
utf8 1007
c4000 4000
empty 1000
--- error_log
closing with status 1002: invalid close status code 1005
closing with status 1002: close frame with a 1-byte payload
closing with status 1007: close reason is not valid UTF-8
