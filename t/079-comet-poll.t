# goim over long-polls (not in goim, issue 17): GET /poll with a token opens
# a session (op 8's event, X-Goim-Session, X-Goim-Cursor), each GET
# /poll?session=S&cursor=N is answered at once with the events after N or
# held until some come (or goim_comet_poll_timeout), on an ordinary
# keep-alive HTTP connection; the session lives between polls, changes
# room and operations by the control call, and expires after
# goim_comet_poll_idle without a poll.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client qw(unpack_ensure);
use Goim::Daemon;
use Goim::Ensure;
use Goim::Log;
use Goim::Poll;
use Goim::Sse;
use Goim::Time;
use JSON::PP;

our $Token = '{"mid":7900,"key":"poll-7900","room_id":"live://79","accepts":[1000]}';

# long enough that a held poll is only answered by what it waits for
our $Timeout = int(Goim::Time::scaled(10));
our $Short = int(Goim::Time::scaled(400));
our $Idle = int(Goim::Time::scaled(1500));

Goim::Stack::setup(job_args => ['--ensure-retry', 300, '--ensure-retries', 3]);
$Goim::Stack::MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1
    goim_comet_room_history 5;
    goim_comet_room_history_ttl 1h;/m;
$Goim::Stack::Config .= <<"_EOC_";

    location = /poll {
        goim_comet_poll;
        goim_comet_poll_timeout ${Timeout}s;
        goim_comet_poll_idle @{[ 2 * $Timeout ]}s;
        # what a page of another origin needs to read the headers
        add_header Access-Control-Expose-Headers "X-Goim-Cursor, X-Goim-Session" always;
    }

    location = /poll/short {
        goim_comet_poll;
        goim_comet_poll_timeout ${Short}ms;
        goim_comet_poll_idle ${Idle}ms;
    }

    location = /poll/small {
        goim_comet_poll;
        goim_comet_poll_timeout ${Timeout}s;
        goim_comet_poll_idle @{[ 2 * $Timeout ]}s;
        goim_comet_queue 3;
    }

    location = /sse/control {
        goim_comet_sse_control;
    }
_EOC_

# how many polls of the key comet held so far (its debug lines)
sub held_count {
    my $key = shift;
    my @l = Goim::Log::text() =~ /poll of key "\Q$key\E" held/g;
    return scalar @l;
}

# sends $p's poll and waits until comet holds it
sub send_held {
    my ($p, $key, %o) = @_;
    my $n = held_count($key);
    $p->send_poll(%o);
    return Goim::Time::wait_until(sub { held_count($key) > $n });
}

run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: open with the token in the query: 200 text/event-stream, the session and cursor headers, op 8's event with the session; the connection stays for the next poll
--- init
my $p = Goim::Poll->new(token => $main::Token);
my $a = $p->open_answer or die "no answer\n";
Test::More::is($a->{status}, 200, 'open: 200');
Test::More::is($a->{headers}{'content-type'}, 'text/event-stream', 'text/event-stream');
Test::More::is($a->{headers}{'cache-control'}, 'no-cache', 'no-cache');
Test::More::like($p->session, qr/^[A-Za-z0-9_-]{22}\.poll-7900$/, 'X-Goim-Session: MAC.KEY');
Test::More::is($p->cursor, 1, 'X-Goim-Cursor: 1, one event');
Test::More::is($a->{events}[0]{event}, '8', 'op 8 as event 8');
my $au = $p->auth;
Test::More::is("$au->{mid} $au->{key} $au->{room_id}", '7900 poll-7900 live://79', 'who it is');
Test::More::is($p->auth->{session}, $p->session, 'its JSON carries the session too');
Test::More::is($a->{headers}{connection}, 'keep-alive', 'keep-alive');
Test::More::is($a->{headers}{'access-control-expose-headers'}, 'X-Goim-Cursor, X-Goim-Session',
               'add_header applies to the answers');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', "hello\nworld");
my $r = $p->poll;
Test::More::is($r->{status}, 200, 'the poll on the same connection: 200');
my ($e) = grep { ($_->{op} // 0) == 1000 } @{$r->{events}};
Test::More::is($e && $e->{data}, "hello\nworld", 'the push by mid');
Test::More::is($e && $e->{block}, "event: 1000\ndata: hello\ndata: world", 'as SSE writes it');
Test::More::is($p->cursor, 2, 'cursor 2');
--- request
GET /status
--- response_body_like chomp
"connections":\{"tcp":0,"ws":0,"poll":1,"online":1\},.*"poll":\{"sessions":1,"answered":2,



=== TEST 2: a held poll is answered by a push by mid, by key, to the room and to all; what comes in one turn goes in one answer
--- init
my $p = Goim::Poll->new(token => $main::Token);
for my $push ('/goim/push/mids?operation=1000&mids=7900', '/goim/push/keys?operation=1000&keys=poll-7900',
              '/goim/push/room?operation=1000&type=live&room=79', '/goim/push/all?operation=1000') {
    main::send_held($p, 'poll-7900') or die "the poll was not held\n";
    Goim::Stack::push($push, "via $push");
    my $r = $p->answer or die "no answer for $push\n";
    Test::More::is(join(',', map { $_->{data} } @{$r->{events}}), "via $push", "held poll answered by $push");
}
my $c = $p->cursor;
Test::More::is($c, 5, 'four events after op 8');
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":1,"answered":5,"timed_out":0,"expired":0\}



=== TEST 3: with no event a held poll is answered at goim_comet_poll_timeout: 200, empty, the cursor unchanged; the answers keep the connection alive
--- init
my $p = Goim::Poll->new(token => $main::Token, path => '/poll/short');
my $r = $p->poll(timeout => 10);
Test::More::is($r->{status}, 200, 'at the timeout: 200');
Test::More::is($r->{body}, '', 'empty');
Test::More::is($r->{headers}{'x-goim-cursor'}, 1, 'cursor unchanged');
$r = $p->poll(timeout => 10);
Test::More::is("$r->{status} $r->{headers}{'x-goim-cursor'}", '200 1', 'again, on the same connection');
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":1,"answered":3,"timed_out":2,



=== TEST 4: cursor semantics: events not confirmed are sent again, confirmed ones are freed; a cursor above the last event sent, not a number or missing: 400
--- init
my $p = Goim::Poll->new(token => $main::Token);
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', "m$_") for 1 .. 3;
my $r;
Goim::Time::wait_until(sub {
    $r = $p->poll(cursor => 1);
    @{$r->{events}} == 3 || do { $p->{cursor} = 1; 0 } });
Test::More::is(join(' ', map { $_->{data} } @{$r->{events}}), 'm1 m2 m3', 'three events');
Test::More::is($r->{headers}{'x-goim-cursor'}, 4, 'cursor 4');
$r = $p->poll(cursor => 2);
Test::More::is(join(' ', map { $_->{data} } @{$r->{events}}), 'm2 m3', 'cursor 2: m2, m3 again (the answer was lost)');
Test::More::is($r->{headers}{'x-goim-cursor'}, 4, '... cursor 4 again');
$r = $p->poll(cursor => 1);
Test::More::is(join(' ', map { $_->{data} } @{$r->{events}}), 'm2 m3', 'cursor 1 after 2: m1 was freed');
for my $bad (['5', qr/^cursor above the last event sent/], ['x', qr/^cursor missing or not a number/],
             ['-1', qr/^cursor missing or not a number/], [undef, qr/^cursor missing or not a number/]) {
    $r = $p->poll(cursor => $bad->[0]);
    Test::More::is($r->{status}, 400, 'cursor ' . ($bad->[0] // 'none') . ': 400');
    Test::More::like($r->{json}{message}, $bad->[1], "... $r->{json}{message}");
    Test::More::is($r->{json}{code}, -400, '... code -400');
}
main::send_held($p, 'poll-7900', cursor => 4) or die "cursor 4 was not held\n";
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', 'm4');
$r = $p->answer;
Test::More::is(join(' ', map { $_->{data} } @{$r->{events}}), 'm4', 'the bad ones changed nothing: m4 only');
Test::More::is($r->{headers}{'x-goim-cursor'}, 5, 'cursor 5');
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":1,



=== TEST 5: a second poll while one is held: the held one is answered at once (200, empty, its cursor), the new one is held instead
--- init
my $p = Goim::Poll->new(token => $main::Token);
my $q = Goim::Poll->new(no_open => 1);
$q->{session} = $p->session;
$q->{cursor} = $p->cursor;
main::send_held($p, 'poll-7900') or die "the first poll was not held\n";
main::send_held($q, 'poll-7900') or die "the second poll was not held\n";
my $r = $p->answer(5) or die "the first poll was not answered\n";
Test::More::is("$r->{status} $r->{headers}{'x-goim-cursor'} [$r->{body}]", '200 1 []', 'the first: 200, empty, cursor 1');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', 'for the second');
$r = $q->answer or die "the second poll was not answered\n";
Test::More::is($r->{events}[0]{data}, 'for the second', 'the second gets the push');
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":1,"answered":3,"timed_out":0,



=== TEST 6: control calls (change room, sub, unsub) on a poll session; their replies come in the next poll
--- init
my $p = Goim::Poll->new(token => $main::Token);
my $s = $p->session;
my ($st, $j) = Goim::Sse::control($s, 12, 'live://791');
Test::More::is("$st $j->{code}", '202 0', 'op 12: 202');
my $r = $p->poll;
Test::More::is("$r->{events}[0]{op} $r->{events}[0]{data}", '13 live://791', 'op 13 in the next poll');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=79', 'old room');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=791', 'new room');
$r = $p->poll;
Test::More::is($r->{events}[0]{data}, 'new room', 'the new room\'s push, not the old one\'s');
($st) = Goim::Sse::control($s, 14, '2000');
Test::More::is($st, 202, 'op 14: 202');
$r = $p->poll;
Test::More::is("$r->{events}[0]{op} $r->{events}[0]{data}", '15 2000', 'op 15');
Goim::Stack::push('/goim/push/mids?operation=2000&mids=7900', 'subbed');
$r = $p->poll;
Test::More::is($r->{events}[0]{data}, 'subbed', 'op 2000 accepted now');
($st) = Goim::Sse::control($s, 16, '2000');
$r = $p->poll;
Test::More::is("$r->{events}[0]{op} $r->{events}[0]{data}", '17 2000', 'op 17');
Goim::Stack::push('/goim/push/mids?operation=2000&mids=7900', 'unsubbed');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', 'still');
$r = $p->poll;
Test::More::is($r->{events}[0]{data}, 'still', '2000 no more, 1000 still');
--- request
GET /status
--- response_body_like chomp
"sse":\{"connections":0,.*"control_calls":3,"control_refused":0\}



=== TEST 7: an ensure message comes as op 19 (base64); acknowledged by the control call (op 18), it is not sent again
--- init
my $p = Goim::Poll->new(token => '{"mid":7907,"key":"poll-7907","room_id":"live://79","accepts":[1000]}');
my ($st) = Goim::Sse::control($p->session, 18, '');
Test::More::is($st, 202, 'op 18, empty: it acknowledges');
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7907&ensure=1', 'sure');
my ($e, $r);
Goim::Time::wait_until(sub {
    $r = $p->poll;
    ($e) = grep { ($_->{op} // 0) == 19 } @{$r->{events}};
    $e;
}) or die "no op 19\n";
Test::More::is($e->{event}, '19.b64', 'event 19.b64');
my $m = Goim::Client::unpack_ensure($e->{data});
Test::More::is("$m->{id} $m->{packet}{body}", "$id sure", 'its id and message');
($st) = Goim::Sse::control($p->session, 18, $id);
Test::More::is($st, 202, 'acknowledged');
Test::More::ok(Goim::Ensure::wait_receipt($id, 7907, 'delivered'), 'the receipt says delivered');
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":1,



=== TEST 8: recovery: back with last_event_id, what was pushed to the room meanwhile comes in the open's answer, then op 21
--- init
my $tok = '{"mid":7908,"key":"poll-7908","room_id":"live://798","accepts":[1000],"recover":true}';
my $p = Goim::Poll->new(token => $tok);
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=798', 'm1');
my $r = $p->poll;
my ($e) = grep { ($_->{op} // 0) == 1000 } @{$r->{events}};
Test::More::like($e->{id}, qr{^\d+:\d+/$}, "m1 with its position ($e->{id})");
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=798', "missed$_") for 1 .. 2;
# both in comet's history: the old session has them
my $seen = '';
Goim::Time::wait_until(sub {
    $seen .= join '', map { $_->{data} } grep { ($_->{op} // 0) == 1000 } @{$p->poll->{events}};
    $seen =~ /missed2/;
}) or die "the pushes did not come\n";
my $b = Goim::Poll->new(token => $tok, last_event_id => $e->{id});
my @ev = @{$b->open_answer->{events}};
Test::More::is(join(' ', map { $_->{op} } @ev), '8 1000 1000 21 21', 'op 8, the two missed, op 21 twice');
Test::More::is(join(' ', map { $_->{data} } @ev[1, 2]), 'missed1 missed2', 'in order');
my $j = JSON::PP::decode_json($ev[3]{data});
Test::More::is("$j->{stream} $j->{recovered} $j->{missed}", 'room 1 2', 'op 21: recovered, 2 missed');
--- request
GET /status
--- response_body_like chomp
"recovered":1,"gaps":0,"recovered_msgs":2



=== TEST 9: a session with no poll for goim_comet_poll_idle expires (logged, counted, told to logic); its next poll gets 404
--- init
require HTTP::Tiny;
my $http = HTTP::Tiny->new(timeout => 5);
my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/goim/online/total';
my $sessions = sub { $http->get($url)->{content} =~ /"session_count":(\d+)/ ? $1 : -1 };
my $p = Goim::Poll->new(token => '{"mid":7909,"key":"poll-7909","room_id":"live://79"}', path => '/poll/short');
my $n = $sessions->();
Goim::Log::wait_for(qr/poll session expired/, Goim::Time::scaled(10)) or die "no expiry\n";
Test::More::ok(Goim::Time::wait_until(sub { $sessions->() == $n - 1 }), 'router forgot the session (logic\'s Disconnect)');
my $r = $p->poll;
Test::More::is($r->{status}, 404, 'then 404');
Test::More::like($r->{json}{message}, qr/^no poll session .*: authenticate again$/, "... $r->{json}{message}");
Test::More::is($r->{json}{code}, -404, '... code -404');
--- request
GET /status
--- response_body_like chomp
"connections":\{"tcp":0,"ws":0,"poll":0,"online":0\},.*"poll":\{"sessions":0,"answered":1,"timed_out":0,"expired":1\}
--- error_log
poll session expired: no poll within goim_comet_poll_idle
--- no_error_log
[alert]
[crit]




=== TEST 10: bad input: no token (401), a token logic refuses (403), a bad last_event_id (400), not a GET (405), a body (400), a forged session (403), a session nobody holds (404), a kicked session's held poll (404)
--- init
my $p = Goim::Poll->new(via => 'none');
Test::More::is($p->open_answer->{status}, 401, 'no token: 401');
Test::More::like($p->open_answer->{json}{message}, qr/^no token/, '... where a token goes');
$p = Goim::Poll->new(token => '{"mid":"not a number"');
Test::More::is($p->open_answer->{status}, 403, 'a token logic refuses: 403');
Test::More::like($p->open_answer->{json}{message}, qr/./, "... with logic's reason");
Test::More::is($p->open_answer->{json}{code}, -403, '... code -403');
$p = Goim::Poll->new(token => $main::Token, last_event_id => '1:2');
Test::More::is($p->open_answer->{status}, 400, 'last_event_id 1:2: 400');
$p = Goim::Poll->new(token => $main::Token, method => 'POST');
Test::More::is($p->open_answer->{status}, 405, 'a POST: 405');
$p = Goim::Poll->new(token => $main::Token, body => 'x');
Test::More::is($p->open_answer->{status}, 400, 'a body: 400');
$p = Goim::Poll->new(token => '{"mid":7910,"key":"poll-7910","pad":"' . ('x' x 5000) . '"}', via => 'header');
Test::More::is($p->open_answer->{status}, 400, 'a token past goim_comet_max_body: 400');
$p = Goim::Poll->new(token => $main::Token, via => 'cookie');
Test::More::is($p->open_answer->{status}, 200, 'the token in a cookie: 200');
$p = Goim::Poll->new(token => $main::Token, via => 'header');
Test::More::is($p->open_answer->{status}, 200, 'in a header: 200');
(my $forged = $p->session) =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;
my $r = $p->poll(session => $forged);
Test::More::is("$r->{status} $r->{json}{message}", '403 not a session id comet gave', 'a forged session: 403');
$r = $p->poll(session => 'short');
Test::More::is($r->{status}, 403, 'not a session id at all: 403');
my $other = Goim::Poll->new(token => '{"mid":7911,"key":"poll-7911","room_id":"live://79"}');
my $gone = $other->session;
main::send_held($other, 'poll-7911') or die "poll-7911: not held\n";
my $k = Goim::Stack::client('k', '{"mid":7911,"key":"poll-7911","room_id":"live://79"}', 1);
$r = $other->answer(10);
Test::More::is($r && $r->{status}, 404, 'kicked by a newer connection with its key: the poll gets 404');
$r = $p->poll(session => $gone, cursor => 0);
Test::More::is($r->{status}, 404, 'and so does the next one');
$r = $p->get('/poll?session=' . Goim::Sse::escape($p->session) . '&cursor=1', method => 'PUT');
Test::More::is($r->{status}, 405, 'a PUT poll: 405');
--- request
GET /status
--- response_body_like chomp
"kicked":[1-9]\d*,
--- error_log
auth refused by logic
--- no_error_log
[alert]
[crit]




=== TEST 11: curl: open, then a poll answered by a push, on one connection (curl -s -D -)
--- init
my $port = Test::Nginx::Socket::server_port();
my $tok = Goim::Sse::escape($main::Token);
my $out = `curl -s -D - 'http://127.0.0.1:$port/poll?token=$tok'`;
Test::More::like($out, qr{^HTTP/1\.1 200 OK\r\n}, 'curl: 200');
Test::More::like($out, qr{\r\nContent-Type: text/event-stream\r\n}, 'text/event-stream');
my ($session) = $out =~ /\r\nX-Goim-Session: (\S+)\r\n/;
my ($cursor) = $out =~ /\r\nX-Goim-Cursor: (\d+)\r\n/;
Test::More::ok($session && $cursor, "X-Goim-Session $session, X-Goim-Cursor $cursor");
Test::More::like($out, qr/\r\n\r\nevent: 8\ndata: \{"mid":7900,/, 'op 8 event');
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', 'by curl');
$out = `curl -s -D - 'http://127.0.0.1:$port/poll?session=$session&cursor=$cursor'`;
Test::More::like($out, qr{^HTTP/1\.1 200 OK\r\n}, 'the poll: 200');
Test::More::like($out, qr/\r\nX-Goim-Cursor: @{[ $cursor + 1 ]}\r\n/, 'the cursor moved by one');
Test::More::like($out, qr/\r\n\r\nevent: 1000\ndata: by curl\n\n$/, 'the push');
--- request
GET /status
--- response_body_like chomp
"poll":\{"sessions":1,"answered":2,



=== TEST 12: the Prometheus page has the poll gauge and counters
--- init
my $p = Goim::Poll->new(token => $main::Token, path => '/poll/short');
$p->poll(timeout => 10);
--- request
GET /status?format=prometheus
--- response_body_like chomp
goim_comet_connections\{transport="poll"\} 1\n.*goim_comet_poll_total\{event="answered"\} 2\ngoim_comet_poll_total\{event="timed_out"\} 1\ngoim_comet_poll_total\{event="expired"\} 0\n



=== TEST 13: between polls a session's queue is bounded by goim_comet_queue: pushes beyond it are dropped, counted and logged; what it holds comes in the next poll
--- init
my $p = Goim::Poll->new(token => $main::Token, path => '/poll/small');
require HTTP::Tiny;
my $http = HTTP::Tiny->new(timeout => 5);
my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status';
my $n = 0;
Goim::Time::wait_until(sub {
    Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', 'q' . $n++);
    $http->get($url)->{content} =~ /"dropped":[1-9]/;
}) or die "no push was dropped\n";
my $r = $p->poll;
my @e = @{$r->{events}};
Test::More::is(join(' ', map { $_->{data} } @e), 'q0 q1', 'the poll gets what the queue held besides op 8: the first two pushes');
--- request
GET /status
--- response_body_like chomp
"messages":\{"push_calls":\d+,"out":\d+,"dropped":[1-9]
--- error_log
output queue full (3), push dropped
--- no_error_log
[alert]
[crit]



=== TEST 14: an answer is bounded (here a quarter of a 64k goim_comet_worker_queue: 16k): what does not fit comes in the next poll; a message whose events alone are over the bound is dropped, counted and logged
--- main_config eval
(my $c = $Goim::Stack::MainConfig) =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    goim_comet_worker_queue 64k;/m;
$c
--- config eval
# logic takes pushes of up to 64k here
"    client_body_buffer_size 64k;\n" . $Goim::Stack::Config
--- init
my $p = Goim::Poll->new(token => $main::Token, path => '/poll/short');
require HTTP::Tiny;
my $http = HTTP::Tiny->new(timeout => 5);
my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status';
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', "$_" x 5000) for 1 .. 6;
# every push is in the session's queue once comet has served its call
Goim::Time::wait_until(sub { $http->get($url)->{content} =~ /"push_calls":([6-9]|\d\d)/ })
    or die "the pushes did not come\n";
my $r = $p->poll;
Test::More::is(join(' ', map { substr($_->{data}, 0, 1) } @{$r->{events}}), '1 2 3', 'three of 5 KB fit in 16 KB');
Test::More::cmp_ok(length $r->{body}, '<=', 16384, 'the answer is ' . length($r->{body}) . ' bytes');
$r = $p->poll;
Test::More::is(join(' ', map { substr($_->{data}, 0, 1) } @{$r->{events}}), '4 5 6', 'the next poll: the other three');
# 20 KB as base64
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', "\x00" x 15000) or die "the push failed\n";
Goim::Stack::push('/goim/push/mids?operation=1000&mids=7900', 'small');
my @got;
Goim::Time::wait_until(sub {
    push @got, map { $_->{data} } @{$p->poll->{events}};
    grep { $_ eq 'small' } @got;
}) or die "no small push\n";
Test::More::is(join(',', map { length } @got), '5', 'the 20 KB event was dropped, the next one came');
--- request
GET /status
--- response_body_like chomp
"messages":\{"push_calls":8,"out":\d+,"dropped":1,
--- error_log
a message of 20024 bytes as events is over a poll answer's 16384, dropped
--- no_error_log
[alert]
[crit]



=== TEST 15: goim_comet_poll_idle not longer than goim_comet_poll_timeout: [emerg]
--- config
    location = /poll {
        goim_comet_poll;
        goim_comet_poll_timeout 30s;
        goim_comet_poll_idle 30s;
    }
--- must_die
--- error_log
goim_comet_poll_idle (30000) must be longer than goim_comet_poll_timeout (30000)
