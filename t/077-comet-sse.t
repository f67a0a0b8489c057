# goim over Server-Sent Events (not in goim): an EventSource subscribes
# with its token in the query (or a header, or a cookie), gets one event a
# packet (the operation as its name, the body as data, base64 when it is
# not text), and changes its room or its operations by a control call.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use Goim::Sse;
use Goim::Time;
use JSON::PP;
use MIME::Base64 qw(encode_base64);

our $Token = '{"mid":7700,"key":"sse-7700","room_id":"live://77","accepts":[1000]}';

$ENV{TEST_NGINX_SSE_SMALL_PORT} ||= Goim::Daemon::free_port();

Goim::Stack::setup();
$Goim::Stack::MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1
    goim_comet_room_history 5;
    goim_comet_room_history_ttl 1h;/m;
$Goim::Stack::Config .= <<'_EOC_';

    location = /sse {
        goim_comet_sse;
    }

    location = /sse/control {
        goim_comet_sse_control;
    }

    location = /sse-big {
        goim_comet_sse;
        goim_comet_max_body 1m;
    }
_EOC_
run_tests();
Goim::Stack::teardown();

# the address space of the nginx process serving the test (one process,
# no master, as Test::Nginx runs it by default), in kB
sub vm_size {
    my $pidf = Test::Nginx::Socket::server_root() . '/logs/nginx.pid';
    open my $fh, '<', $pidf or die "$pidf: $!\n";
    chomp(my $pid = <$fh>);
    open my $st, '<', "/proc/$pid/status" or die "/proc/$pid/status: $!\n";
    while (<$st>) { return $1 if /^VmSize:\s+(\d+)/ }
    die "no VmSize for $pid\n";
}

__DATA__

=== TEST 1: a subscriber with its token in the query: 200, text/event-stream, op 8 with a session, then a push by mid as event 1000
--- init
my $s = Goim::Sse->new(token => $main::Token);
Test::More::is($s->status, 200, 'status 200');
Test::More::is($s->header('content-type'), 'text/event-stream', 'text/event-stream');
Test::More::is($s->header('cache-control'), 'no-cache', 'no-cache');
Test::More::is($s->header('x-accel-buffering'), 'no', 'no buffering by a proxy');
my $a = $s->auth;
Test::More::is("$a->{mid} $a->{key} $a->{room_id}", '7700 sse-7700 live://77', 'op 8: who it is');
Test::More::like($a->{session}, qr/^[A-Za-z0-9_-]{22}\.sse-7700$/, 'and its session id');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', "hello\nworld");
my $e = $s->event_op(1000);
Test::More::is($e->{data}, "hello\nworld", 'the push, its lines joined again');
Test::More::is($e->{block}, "event: 1000\ndata: hello\ndata: world", 'as two data lines');
$main::S1 = $s;
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":1,



=== TEST 2: the token in an X-Goim-Token header, or a goim_token cookie; the header wins over a bad query token
--- init
my $h = Goim::Sse->new(token => '{"mid":7702,"key":"sse-7702","room_id":"live://77"}', via => 'header',
                       query => ['token=' . Goim::Sse::escape('{"mid":"bad"')]);
Test::More::is($h->auth->{key}, 'sse-7702', 'by the header');
my $c = Goim::Sse->new(token => '{"mid":7703,"key":"sse-7703","room_id":"live://77"}', via => 'cookie');
Test::More::is($c->auth->{key}, 'sse-7703', 'by the cookie');
push @main::Keep, $h, $c;
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":2,



=== TEST 3: a body that is not text (binary, or with CR) goes in base64 as event OP.b64; an empty one as one empty data line
--- init
my $s = Goim::Sse->new(token => $main::Token);
push @main::Keep, $s;
$s->session;
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', "\x00\xff\x01bin");
my $e = $s->event(5) or die "no event\n";
Test::More::is($e->{event}, '1000.b64', 'named 1000.b64');
Test::More::is($e->{block}, "event: 1000.b64\ndata: " . MIME::Base64::encode_base64("\x00\xff\x01bin", ''), 'base64 on one data line');
Test::More::is($e->{data}, "\x00\xff\x01bin", 'the bytes');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', "a\r\nb");
Test::More::is($s->event(5)->{event}, '1000.b64', 'a CR: base64');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
$e = $s->event(5);
Test::More::is("$e->{event} $e->{data}", "1000 \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 'UTF-8 text as it is');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', "\xce\xba\xed\xa0\x80");
Test::More::is($s->event(5)->{event}, '1000.b64', 'not UTF-8 (a surrogate): base64');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', '');
$e = $s->event(5);
Test::More::is($e->{block}, "event: 1000\ndata: ", 'empty: one empty data line (EventSource dispatches it)');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":1,



=== TEST 4: a room push (an OpRaw batch) comes as one event per packet; other operations than accepts are filtered for key pushes
--- init
my $s = Goim::Sse->new(token => $main::Token);
push @main::Keep, $s;
$s->session;
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=77', "r$_") for 1 .. 3;
my @e = map { $s->event(5) or die "event $_ missing\n" } 1 .. 3;
Test::More::is(join(' ', map { "$_->{op}:$_->{data}" } @e), '1000:r1 1000:r2 1000:r3', 'three events, in order');
Goim::Stack::push('/goim/push/mids?operation=2000&mids=7700', 'not accepted');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', 'accepted');
Test::More::is($s->event(5)->{data}, 'accepted', 'op 2000 was not delivered, 1000 was');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":1,



=== TEST 5: bad input gets a 4xx with a JSON reason and leaves nothing behind: a bad token (403), none (401), a bad Last-Event-ID (400), a POST (405), a token too long (400)
--- init
my $s = Goim::Sse->new(token => '{"mid":"not a number"');
Test::More::is($s->status, 403, 'a token logic refuses: 403');
my $j = $s->json;
Test::More::is($j->{code}, -403, 'code -403');
Test::More::like($j->{message}, qr/./, "with logic's reason ($j->{message})");
Test::More::ok($s->closed(5), 'and the connection closed');
$s = Goim::Sse->new(via => 'none');
Test::More::is($s->status, 401, 'no token: 401');
Test::More::like($s->json->{message}, qr/^no token/, 'saying where a token goes');
for my $id ('1:2', 'x:1/', '1:2/3', '0:5/', '1:2/3:4/5:6', '18446744073709551616:1/') {
    $s = Goim::Sse->new(token => $main::Token, last_event_id => $id);
    Test::More::is($s->status, 400, "Last-Event-ID \"$id\": 400");
    Test::More::like($s->json->{message}, qr/^Last-Event-ID is not/, '... with the reason');
}
$s = Goim::Sse->new(token => $main::Token, query => ['last_event_id=' . Goim::Sse::escape('1:2/')]);
Test::More::is($s->status, 200, 'a last_event_id argument URL-escaped (encodeURIComponent) is read unescaped');
$s->close;
$s = Goim::Sse->new(token => $main::Token, method => 'POST');
Test::More::is($s->status, 405, 'a POST: 405');
$s = Goim::Sse->new(token => $main::Token, body => 'x');
Test::More::is($s->status, 400, 'a GET with a body: 400');
Test::More::like($s->json->{message}, qr/no body/, '... it has none');
$s = Goim::Sse->new(token => '{"mid":7705,"pad":"' . ('x' x 5000) . '"}', via => 'header');
Test::More::is($s->status, 400, 'a token past goim_comet_max_body: 400');
--- request
GET /status
--- response_body_like chomp
"connections":\{"tcp":0,"ws":0,"poll":0,"online":0\},.*"sse":\{"connections":0,.*"auth_failed":1,
--- error_log
auth refused by logic



=== TEST 6: control calls: change room (op 12), sub (14) and unsub (16) as the client's own, the replies on the stream
--- init
my $s = Goim::Sse->new(token => $main::Token);
push @main::Keep, $s;
my $session = $s->session or die "no session\n";
my ($st, $j) = Goim::Sse::control($session, 12, 'live://78');
Test::More::is("$st $j->{code}", '202 0', 'op 12: 202');
my $e = $s->event_op(13) or die "no op 13\n";
Test::More::is($e->{data}, 'live://78', 'op 13 on the stream, with the room');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=77', 'old room');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=78', 'new room');
Test::More::is($s->event(5)->{data}, 'new room', 'the new room\'s push, not the old one\'s');
($st) = Goim::Sse::control($session, 14, '2000,2001');
Test::More::is($st, 202, 'op 14: 202');
Test::More::is($s->event_op(15)->{data}, '2000,2001', 'op 15 on the stream');
Goim::Stack::push('/goim/push/mids?operation=2001&mids=7700', 'subbed');
Test::More::is($s->event(5)->{data}, 'subbed', 'op 2001 is accepted now');
($st) = Goim::Sse::control($session, 16, '2001');
Test::More::is($s->event_op(17)->{data}, '2001', 'op 16: op 17 on the stream');
Goim::Stack::push('/goim/push/mids?operation=2001&mids=7700', 'unsubbed');
Goim::Stack::push('/goim/push/mids?operation=2000&mids=7700', 'still');
Test::More::is($s->event(5)->{data}, 'still', '2001 no more, 2000 still');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":1,"pings":0,"heartbeats":0,"stalled":0,"control_calls":3,"control_refused":0\}



=== TEST 7: bad control calls get a 4xx with a JSON reason and change nothing
--- init
my $s = Goim::Sse->new(token => $main::Token);
push @main::Keep, $s;
my $session = $s->session or die "no session\n";
my $gone = Goim::Sse->new(token => '{"mid":7707,"key":"sse-7707","room_id":"live://77"}');
my $gone_session = $gone->session or die "no session\n";
$gone->close;
Goim::Time::wait_until(sub { my ($st) = Goim::Sse::control($gone_session, 14, '1'); $st == 404 })
    or die "the closed client's session still found\n";
(my $forged = $session) =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;
my @bad = (
    [undef, 12, 'live://99', 400, qr/^no session/],
    [$forged, 12, 'live://99', 403, qr/^not a session id/],
    ['short', 12, 'live://99', 403, qr/^not a session id/],
    [substr($session, 0, 22) . '.sse-7707', 12, 'live://99', 403, qr/^not a session id/],
    [$session, 13, 'live://99', 400, qr/^op must be/],
    [$session, undef, 'live://99', 400, qr/^op must be/],
    [$session, 2, '', 400, qr/^op must be/],
    [$session, 14, '1000,x', 400, qr/^the body is not a list/],
    [$session, 12, "live://99\nnot:a:pos", 400, qr/^op 12: the position/],
    [$session, 12, 'x' x 5000, 413, qr/^body longer/],
    [$gone_session, 12, 'live://99', 404, qr/^no SSE or poll session/],
);
for my $b (@bad) {
    my ($st, $j) = Goim::Sse::control($b->[0], $b->[1], $b->[2]);
    Test::More::is($st, $b->[3], "session " . ($b->[0] // 'none') . " op " . ($b->[1] // 'none') . ": $b->[3]");
    Test::More::like($j->{message}, $b->[4], "... $j->{message}");
    Test::More::is($j->{code}, -$b->[3], '... code');
}
my ($st, $j) = Goim::Sse::control($session, 12, 'live://99', method => 'GET');
Test::More::is($st, 405, 'a GET: 405');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=77', 'same room');
my $e = $s->event(5);
Test::More::is("$e->{op} $e->{data}", '1000 same room', 'the stream is as it was: no reply, same room');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":1,.*"control_calls":0,"control_refused":1[2-9]



=== TEST 8: every goim_comet_sse_ping a comment line, and a heartbeat comet makes for the client
--- config
    lingering_close off;

    location /goim/ {
        goim_logic_api;
    }

    location = /sse {
        goim_comet_sse;
        goim_comet_sse_ping 200ms;
    }

    location = /status {
        goim_comet_status;
    }
--- init
my $s = Goim::Sse->new(token => $main::Token);
push @main::Keep, $s;
$s->session or die "no session\n";
Goim::Time::wait_until(sub { $s->comments >= 3 }) or die "fewer than 3 comment lines\n";
Test::More::pass('comment lines');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', 'between pings');
Test::More::is($s->event(5)->{data}, 'between pings', 'events go on between them');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":1,"pings":([3-9]|\d\d+),"heartbeats":([3-9]|\d\d+),



=== TEST 9: a client that goes is closed at once, without waiting for a ping
--- init
my $s = Goim::Sse->new(token => $main::Token);
$s->session or die "no session\n";
$s->close;
require HTTP::Tiny;
my $http = HTTP::Tiny->new(timeout => 5);
my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status';
Goim::Time::wait_until(sub { $http->get($url)->{content} =~ /"sse":\{"connections":0,/ })
    or die "the SSE connection is still counted\n";
--- request
GET /status
--- response_body_like chomp
"connections":\{"tcp":0,"ws":0,"poll":0,"online":0\},.*"sse":\{"connections":0,"pings":0,



=== TEST 10: with "recover" in the token, room messages and broadcasts carry both positions as their id; back with Last-Event-ID, what was missed comes, then op 21
--- init
my $tok = '{"mid":7710,"key":"sse-7710","room_id":"live://710","accepts":[1000],"recover":true}';
my $s = Goim::Sse->new(token => $tok);
$s->session or die "no session\n";
my @r = map { $s->event_op(21) or die "no op 21\n" } 1 .. 2;
Test::More::is(JSON::PP::decode_json($r[0]{data})->{stream}, 'room', 'op 21 for the room first');
Test::More::is($r[1]{id}, '/', 'no position yet in either stream: id "/"');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=710', 'm1');
my $e = $s->event(5);
Test::More::like($e->{id}, qr{^(\d+):(\d+)/$}, "m1 with its room position ($e->{id})");
my ($ep, $seq) = $e->{id} =~ m{^(\d+):(\d+)/};
Goim::Stack::push('/goim/push/all?operation=1000', 'b1');
$e = $s->event(5);
Test::More::like($e->{id}, qr{^$ep:$seq/\d+:\d+$}, "a broadcast: both positions ($e->{id})");
my $last = $e->{id};
$s->close;
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=710', "missed$_") for 1 .. 2;
my $b = Goim::Sse->new(token => $tok, last_event_id => $last);
$b->session or die "no session on the way back\n";
my @m = map { $b->event_op(1000) or die "missed #$_ not sent\n" } 1 .. 2;
Test::More::is(join(' ', map { $_->{data} } @m), 'missed1 missed2', 'the two missed, in order');
Test::More::is($m[1]{id}, "$ep:" . ($seq + 2) . '/' . ($last =~ s{.*/}{}r), 'with ids going on from there');
my $r = JSON::PP::decode_json($b->event_op(21)->{data});
Test::More::is("$r->{stream} $r->{recovered} $r->{missed}", 'room 1 2', 'op 21: recovered, 2 missed');
$r = JSON::PP::decode_json($b->event_op(21)->{data});
Test::More::is("$r->{stream} $r->{recovered} $r->{missed}", 'all 1 0', 'op 21: the broadcasts, nothing missed');
push @main::Keep, $b;
--- request
GET /status
--- response_body_like chomp
"recovered":2,"gaps":0,"recovered_msgs":2



=== TEST 11: a client that reads nothing fills its queue: pushes to it are dropped (counted), and two pings later it is closed
--- http_config
    server {
        # a small send buffer: the client's socket fills at once
        listen 127.0.0.1:$TEST_NGINX_SSE_SMALL_PORT sndbuf=4k;

        location = /sse {
            goim_comet_sse;
            goim_comet_sse_ping 300ms;
            goim_comet_queue 4;
        }
    }
--- init
my $s = Goim::Sse->new(token => $main::Token, port => $ENV{TEST_NGINX_SSE_SMALL_PORT}, rcvbuf => 4096);
$s->session or die "no session\n";
# from here on it reads nothing
my $n = 0;
require HTTP::Tiny;
my $http = HTTP::Tiny->new(timeout => 5);
my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status';
Goim::Time::wait_until(sub {
    Goim::Stack::push('/goim/push/mids?operation=1000&mids=7700', 'y' x 4000) for 1 .. 10;
    $n += 10;
    $http->get($url)->{content} =~ /"dropped":[1-9]/ || $n >= 2000;
}) or die "no push was dropped\n";
Goim::Time::wait_until(sub { $http->get($url)->{content} =~ /"stalled":1/ })
    or die "the client was not closed\n";
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":0,"pings":\d+,"heartbeats":\d+,"stalled":1,
--- error_log
SSE client reads nothing: output queue full at two pings
output queue full



=== TEST 12: an idle SSE connection keeps no read buffer: 20 of them where goim_comet_max_body is 1m (each op 7 came in a 1 MB buffer) grow the worker by far less than 20 MB
--- init
my $before = main::vm_size();
for my $i (1 .. 20) {
    my $s = Goim::Sse->new(path => '/sse-big', via => 'header',
                           token => '{"mid":' . (7790 + $i) . ',"key":"sse-big-' . $i . '","room_id":"live://77"}');
    $s->session or die "connection $i: no session\n";
    push @main::Keep, $s;
}
my $grew = main::vm_size() - $before;
Test::More::diag("TEST 12: 20 idle SSE connections grew the worker by $grew kB");
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    # valgrind's allocator holds freed blocks back: the worker grows anyway
    Test::More::pass('TEST 12 - not measured under valgrind');
} else {
    Test::More::cmp_ok($grew, '<', 10 * 1024, 'TEST 12 - the worker grew by less than 10 MB (not 20)');
}
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":20,



=== TEST 13: curl subscribes (-N, the token in a header): op 8, then a push by mid as event 1000; without a token curl gets 401 and goim's JSON reason
--- init
my $port = Test::Nginx::Socket::server_port();
# not in server_root: the real Test::Nginx removes only what it made there
require File::Temp;
my $tmp = File::Temp->new(SUFFIX => '.sse');
my $out = $tmp->filename;
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', $out or die "$out: $!";
    exec 'curl', '-sN', '-H', 'X-Goim-Token: {"mid":7790,"key":"sse-curl","room_id":"live://79","accepts":[1000]}',
         "http://127.0.0.1:$port/sse";
    die "curl: $!";
}
my $read = sub { open my $fh, '<', $out or return ''; local $/; <$fh> // '' };
Goim::Time::wait_until(sub { $read->() =~ /^event: 8\ndata: \{.*"key":"sse-curl".*"session":"[^"]+"\}\n\n/m })
    or die "curl got no op 8: " . $read->() . "\n";
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7790', 'via curl');
my $got = Goim::Time::wait_until(sub { $read->() =~ /^event: 1000\ndata: via curl\n\n/m });
kill 'TERM', $pid;
waitpid $pid, 0;
Test::More::ok($got, 'curl read the push as event 1000') or Test::More::diag($read->());
my $refused = `curl -s -w ' %{http_code}' http://127.0.0.1:$port/sse`;
Test::More::is($refused, qq({"code":-401,"message":"no token: an X-Goim-Token header, a goim_token cookie or a token argument"}\n 401),
               'no token: 401 and the reason');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":0,
