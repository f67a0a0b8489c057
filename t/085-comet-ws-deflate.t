# WebSocket permessage-deflate (RFC 7692) with goim_comet_ws_deflate on:
# the negotiation (declined offers, a malformed header), compressed
# pushes above goim_comet_ws_deflate_min_length and plain ones below it,
# a message compressed once for every recipient, compressed client frames
# inflated within goim_comet_max_body, bad compressed input closed, and
# goim-cli --deflate (the benchmarks' client) inflating what it gets.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Time;
use Goim::Cli;
use Compress::Raw::Zlib ();

our $Token = '{"mid":300,"room_id":"live://1","platform":"web","accepts":[1000]}';
our $Answer = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

# a chat message as a room gets it: JSON, 600-odd bytes
our $Big = '{"type":"chat","room":"live://1","from":{"id":12345,"name":"alice",'
    . '"level":7,"badges":["vip","early"]},"messages":['
    . join(',', map { qq({"seq":$_,"text":"hello room, message $_ of many","ts":17000000$_}) } 1 .. 8)
    . ']}';

$Goim::Stack::Config =~ s/(location = \/sub \{\n\s*goim_comet_ws;\n)/$1        goim_comet_ws_deflate on;\n/
    or die "no /sub location to add goim_comet_ws_deflate to\n";
$Goim::Stack::Config .= <<'_EOC_';

    location = /plain {
        goim_comet_ws;
    }
_EOC_

sub ws {
    my ($name, %o) = @_;
    my $token = delete $o{token};
    return Goim::Stack::client($name, $token, 1, transport => 'ws', %o);
}

Goim::Stack::setup();
Goim::Cli::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: an offer as browsers make it is taken; a push above the threshold comes compressed, one below it plain
--- init
main::ws('d1', token => $main::Token, deflate => 1);
Goim::Stack::push('/goim/push/mids?operation=1000&mids=300', 'small one') or die "push failed\n";
--- request eval
"POST /goim/push/mids?operation=1000&mids=300\n$main::Big"
--- response_body
{"code":0,"message":""}
--- goim_ws_extensions eval
"d1 $main::Answer"
--- goim_auth
d1 op=8 seq=1 ver=1 body={"mid":300,"key":"<uuid>","room_id":"live://1"}
--- goim_receive eval
"d1 op=1000 seq=0 ver=1 body=small one\nd1 op=1000 seq=0 ver=1 body=$main::Big"
--- goim_ws_rsv1
d1 0 0 1



=== TEST 2: a client that offers nothing gets plain frames, and so does one on a location without goim_comet_ws_deflate
--- init
main::ws('none', token => '{"mid":301,"accepts":[1000]}');
main::ws('off', token => '{"mid":302,"accepts":[1000]}', deflate => 1, path => '/plain');
--- request eval
"POST /goim/push/mids?operation=1000&mids=301&mids=302\n$main::Big"
--- response_body
{"code":0,"message":""}
--- goim_ws_extensions
none none
off none
--- goim_receive eval
"none op=1000 seq=0 ver=1 body=$main::Big\noff op=1000 seq=0 ver=1 body=$main::Big"
--- goim_ws_rsv1
none 0 0
off 0 0



=== TEST 3: offers RFC 7692 says to decline are declined, the upgrade goes on; the next acceptable offer is taken
--- init
main::ws('bits10', token => '{"mid":303,"accepts":[1000]}',
         headers => ['Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10']);
main::ws('unknown', token => '{"mid":304,"accepts":[1000]}',
         headers => ['Sec-WebSocket-Extensions: permessage-deflate; x_param=1',
                     'Sec-WebSocket-Extensions: x-webkit-deflate-frame']);
main::ws('twice', token => '{"mid":305,"accepts":[1000]}',
         headers => ['Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_no_context_takeover']);
main::ws('second', token => '{"mid":306,"accepts":[1000]}',
         headers => ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=7, permessage-deflate; client_max_window_bits=10']);
main::ws('bits15', token => '{"mid":307,"accepts":[1000]}',
         headers => ['Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="15"']);
--- request eval
"POST /goim/push/mids?operation=1000&mids=303&mids=304&mids=305&mids=306&mids=307\n$main::Big"
--- response_body
{"code":0,"message":""}
--- goim_ws_extensions eval
"bits10 none
unknown none
twice none
second $main::Answer
bits15 $main::Answer; server_max_window_bits=15"
--- goim_ws_rsv1
bits10 0 0
unknown 0 0
twice 0 0
second 0 1
bits15 0 1
--- error_log
permessage-deflate offer(s) declined, the last: server_max_window_bits below 15 is not supported
permessage-deflate offer(s) declined, the last: unknown permessage-deflate parameter
permessage-deflate offer(s) declined, the last: client_no_context_takeover given twice
permessage-deflate offer(s) declined, the last: client_max_window_bits not 8 to 15
--- no_error_log
[error]



=== TEST 4: a header that breaks RFC 6455's grammar fails the upgrade (§9.1) with 400 and the reason
--- request
GET /sub
--- more_headers
Upgrade: websocket
Connection: Upgrade
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
Sec-WebSocket-Version: 13
Sec-WebSocket-Extensions: permessage-deflate;; client_max_window_bits
--- error_code: 400
--- response_body
Sec-WebSocket-Extensions is malformed
--- error_log
WebSocket upgrade refused: Sec-WebSocket-Extensions is malformed



=== TEST 5: one room push to three compressing clients and a plain one: compressed once, the frame shared
--- init
my $tok = '{"mid":310,"room_id":"live://5","accepts":[1000]}';
main::ws("r$_", token => $tok, deflate => 1) for 1 .. 3;
main::ws('rp', token => $tok);
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=5', $main::Big)
    or die "push failed\n";
for my $n (qw(r1 r2 r3 rp)) {
    my $c = $Goim::Stack::Clients{$n}{client};
    my $p = $c->wait_for_op(1000, Goim::Time::scaled(5));
    die "$n: no push\n" unless $p && $p->{body} eq $main::Big;
}
--- request
GET /status
--- response_body_like chomp
"deflate":\{"messages":1,"skipped":0,"failed":0,"bytes_in":\d{3},"bytes_out":\d{3},"frames":3,"inflated":0\}
--- goim_ws_rsv1
r1 0 1
r2 0 1
r3 0 1
rp 0 0



=== TEST 6: compressed client messages are inflated: whole, fragmented, ending in a final block
--- init
my $c = main::ws('cin', deflate => 1);
$c->send_raw(Goim::Client::ws_frame(2, Goim::Client::deflate_message(Goim::Client::pack_packet(1, 7, 5, $main::Token)), rsv => 1));
my $hb = Goim::Client::deflate_message(Goim::Client::pack_packet(1, 2, 6, ''));
$c->send_raw(Goim::Client::ws_frame(2, substr($hb, 0, 3), rsv => 1, fin => 0)
             . Goim::Client::ws_frame(9, 'ping')
             . Goim::Client::ws_frame(0, substr($hb, 3), fin => 1));
# Z_FINISH: a final block and no sync tail, which RFC 7692 §7.2.2 allows
my ($d) = Compress::Raw::Zlib::Deflate->new(-WindowBits => -15, -AppendOutput => 1);
my $fin = '';
$d->deflate(Goim::Client::pack_packet(1, 2, 7, ''), $fin);
$d->flush($fin);
$c->send_raw(Goim::Client::ws_frame(2, $fin, rsv => 1));
for my $want ([8, 5], [3, 6], [3, 7]) {
    my $p = $c->read_packet(Goim::Time::scaled(5));
    die "no op $want->[0] seq $want->[1]: " . Goim::Stack::describe($p) . "\n"
        unless $p && $p->{op} == $want->[0] && $p->{seq} == $want->[1];
}
--- request
GET /status
--- response_body_like chomp
"inflated":3\}



=== TEST 7: a small frame that inflates past goim_comet_max_body closes with 1009, and nothing is kept
--- init
my $c = main::ws('bomb', deflate => 1);
my $bomb = Goim::Client::deflate_message(Goim::Client::pack_packet(1, 7, 1, '{' . (' ' x 4_000_000) . '}'));
die "bomb of " . length($bomb) . " bytes\n" if length $bomb > 4096;
$c->send_raw(Goim::Client::ws_frame(2, $bomb, rsv => 1));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_closed
bomb 1009
--- error_log
closing with status 1009: inflated message over goim_comet_max_body



=== TEST 8: bad compressed data closes with 1007
--- init
my $c = main::ws('garbage', deflate => 1);
$c->send_raw(Goim::Client::ws_frame(2, "\xff\xfe\xfd\xfc garbage", rsv => 1));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_closed
garbage 1007
--- error_log
closing with status 1007: bad compressed data



=== TEST 9: RSV1 without the extension, on a continuation or on a control frame closes with 1002
--- init
my $c = main::ws('norsv');
$c->send_raw(Goim::Client::ws_frame(2, Goim::Client::deflate_message(Goim::Client::pack_packet(1, 7, 1, $main::Token)), rsv => 1));
$c = main::ws('contrsv', deflate => 1);
$c->send_raw(Goim::Client::ws_frame(2, 'abc', fin => 0) . Goim::Client::ws_frame(0, 'def', rsv => 1));
$c = main::ws('pingrsv', deflate => 1);
$c->send_raw(Goim::Client::ws_frame(9, 'ping', rsv => 1));
--- request
GET /goim/nothing
--- error_code: 404
--- goim_closed
norsv 1002
contrsv 1002
pingrsv 1002
--- error_log
closing with status 1002: reserved bits set in a frame



=== TEST 10: goim-cli --deflate negotiates, inflates the compressed room push, counts the bytes
--- init
Goim::Cli::start('zc', ['-w', '--deflate', '-p', '-n', 2, '-m', 320, '-r', 'live://cli77',
                        '-d', int(Goim::Time::scaled(5)) + 1, '-e', 2], auth => 2);
--- request eval
"POST /goim/push/room?operation=1000&type=live&room=cli77\n$main::Big"
--- response_body
{"code":0,"message":""}
--- goim_cli eval
"zc client=0 op=1000 seq=0 ver=1 body=$main::Big\nzc client=1 op=1000 seq=0 ver=1 body=$main::Big"
--- goim_cli_summary
zc messages 2
zc deflate_conns 2
zc deflate_frames 2
zc inflated_bytes >1200
zc bad_frames 0
zc bad_packets 0
--- goim_cli_exit
zc 0
