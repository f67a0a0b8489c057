# goim-cli (clients/c), the command-line client tests and benchmarks share:
# TCP, WebSocket and SSE, room and mid pushes, heartbeats, packets sent
# after auth, source addresses, the latency mode, and bad server input.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Cli;
use Goim::Recovery ();
use Goim::Sse ();
use Goim::Time;

# durations given to goim-cli: -d caps a run that -e ends early, or is the
# span TEST 3 and TEST 4 measure over; slow runs stretch them (Goim::Time)
# and TEST 3 and TEST 4 expect counts in proportion
sub d { Goim::Time::scaled($_[0]) }

# ensure messages are resent after 300 ms (TEST 10)
Goim::Stack::setup(job_args => ['--ensure-retry', 300]);
$Goim::Stack::Config .= <<'_EOC_';

    location = /sse {
        goim_comet_sse;
    }
_EOC_
Goim::Cli::setup();
run_tests();
Goim::Stack::teardown();

# a fake comet on a free port: answers auth with op 8, then sends $bytes
# (a code ref: called with the connection number); count => N connections
sub fake_comet {
    my ($bytes, %o) = @_;
    require IO::Socket::INET;
    my $l = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1', LocalPort => 0,
                                  ReuseAddr => 1) or die "listen: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my @kids;
        for my $i (1 .. ($o{count} // 1)) {
            my $s = $l->accept or POSIX::_exit(1);
            my $kid = fork;
            if ($kid) { push @kids, $kid; close $s; next }
            serve($s, ref $bytes eq 'CODE' ? $bytes->($i) : $bytes, %o);
        }
        waitpid $_, 0 for @kids;
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    return "127.0.0.1:$port";
}

sub serve {
    my ($s, $bytes, %o) = @_;
    my $req = '';
    if ($o{ws}) {
        sysread($s, $req, 4096, length $req) until $req =~ /\r\n\r\n/;
        my ($key) = $req =~ /Sec-WebSocket-Key: (\S+)/i;
        require Digest::SHA;
        require MIME::Base64;
        my $acc = MIME::Base64::encode_base64(
            Digest::SHA::sha1($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
        syswrite $s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            . "Connection: Upgrade\r\nSec-WebSocket-Accept: $acc\r\n\r\n";
    }
    my $buf = '';
    sysread($s, $buf, 4096);
    my $auth = Goim::Client::pack_packet(1, 8, 1, '');
    syswrite $s, $o{ws} ? "\x82" . chr(length $auth) . $auth : $auth;
    select undef, undef, undef, 0.2;
    syswrite $s, $bytes;
    select undef, undef, undef, 1;
    POSIX::_exit(0);
}

# a fake SSE server on a free port: writes what $answer (a code ref, called
# with the connection number) gives, in pieces of $o{piece} bytes (all at
# once without), after the request's head came; count => N connections
sub fake_sse {
    my ($answer, %o) = @_;
    require IO::Socket::INET;
    my $l = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1', LocalPort => 0,
                                  ReuseAddr => 1) or die "listen: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my @kids;
        for my $i (1 .. ($o{count} // 1)) {
            my $s = $l->accept or POSIX::_exit(1);
            my $kid = fork;
            if ($kid) { push @kids, $kid; close $s; next }
            my $req = '';
            sysread($s, $req, 4096, length $req) or POSIX::_exit(1) until $req =~ /\r\n\r\n/;
            my $bytes = $answer->($i);
            my $n = $o{piece} || length $bytes;
            for (my $at = 0; $at < length $bytes; $at += $n) {
                syswrite $s, substr($bytes, $at, $n);
                select undef, undef, undef, 0.01 if $o{piece};
            }
            select undef, undef, undef, 1;
            POSIX::_exit(0);
        }
        waitpid $_, 0 for @kids;
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    return "127.0.0.1:$port";
}

sub sse_head {
    my %o = @_;
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        . ($o{chunked} ? "Transfer-Encoding: chunked\r\n" : '') . "\r\n";
}

# a chunked body: one chunk each (with an extension), then the last one
sub chunked {
    return join('', map { sprintf("%x;ext=1\r\n%s\r\n", length $_, $_) } @_) . "0\r\n\r\n";
}

# event-stream lines from a small vocabulary, at random: fields, line
# ends, names that are and are not operations, base64 and not
sub sse_garbage {
    my $i = shift;
    srand($i * 7919);
    my @words = ('data: ', 'data:', 'event: ', 'event: 1000', 'event: 1000.b64', 'event: x',
                 'id: ', ':', 'retry: 5', "\n", "\r", "\r\n", "\n\n", 'AAEC', 'A=', '==', 'ts=1',
                 "\x00", "\xff", 'é');
    return join '', map { $words[int rand @words] } 1 .. 60 + int rand 60;
}

# random bytes, sometimes behind a plausible header, sometimes in a frame
sub garbage {
    my ($i, $ws) = @_;
    srand($i * 7919);
    my $junk = join '', map { chr int rand 256 } 1 .. int(rand 200);
    my $kind = $i % 4;
    my $bytes = $kind == 0 ? $junk
              : $kind == 1 ? pack('NnnNN', int(rand 2**32), 16, 1, 9, 0) . $junk
              : $kind == 2 ? pack('NnnNN', 16 + length $junk, 16, 1, 9, 0) . $junk
              :              pack('NnnNN', int(rand 40), int(rand 40), 1, 1000, 0) . $junk;
    return $bytes unless $ws;
    return $kind == 0 ? $junk : "\x82" . ($kind == 1 ? "\x7f" . pack('NN', 0, length $bytes) : chr(126) . pack('n', length $bytes)) . $bytes;
}

__DATA__

=== TEST 1: TCP: a push by mid is printed, then -e 1 ends the run
--- init
Goim::Cli::start('t1', ['-p', '-d', main::d(5), qw(-e 1 -m 501)], auth => 1);
--- request
POST /goim/push/mids?operation=1000&mids=501
hello cli
--- response_body
{"code":0,"message":""}
--- goim_cli
t1 client=0 op=8 seq=1 ver=1 body={"mid":501,"key":"...
t1 client=0 op=1000 seq=0 ver=1 body=hello cli
--- goim_cli_summary
t1 authed 1
t1 messages 1
t1 bad_packets 0
--- goim_cli_exit
t1 0



=== TEST 2: WebSocket: a room push reaches three clients as op-9 frames
--- init
Goim::Cli::start('t2', [qw(-w -p -n 3 -m 510 -r live://cli2 -d), main::d(5), qw(-e 3)], auth => 3);
--- request
POST /goim/push/room?operation=1001&type=live&room=cli2
to the room
--- response_body
{"code":0,"message":""}
--- goim_cli
t2 client=0 op=1001 seq=0 ver=1 body=to the room
t2 client=1 op=1001 seq=0 ver=1 body=to the room
--- goim_cli_summary
t2 authed 3
t2 messages 3
t2 raw_frames 3
t2 bad_frames 0
--- goim_cli_exit
t2 0



=== TEST 3: heartbeats at the given interval, packets sent after auth, source addresses
--- init
Goim::Cli::start('t3', [qw(-q -n 2 -b 127.0.0.2-127.0.0.3 -H 0.2 -d), main::d(1.2), qw(-s 4:hi)]);
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli_summary eval
# 2 clients heartbeating every 0.2 s for 1.2 s: more than 5 of the 12
"t3 connected 2
t3 authed 2
t3 hb_replies >" . (int(5 * main::d(1.2)) - 1) . "
t3 replies 2
t3 messages 0
t3 failed 0"
--- goim_cli_exit
t3 0



=== TEST 4: latency mode: goim-cli pushes timestamps through the API and measures
--- init
Goim::Cli::start('t4', ['-q', '-n', '4', '-w', '-r', 'live://lat', '-d', main::d(1.5), '--push-rate', '20',
    '-P', "http://127.0.0.1:" . Test::Nginx::Socket::server_port()
          . "/goim/push/room?operation=1000&type=live&room=lat"]);
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli_summary eval
# 20 pushes/s for 1.5 s to 4 clients: more than 15 of the 30 pushes, 40
# of the 120 deliveries
"t4 authed 4
t4 pushes_failed 0
t4 pushes_sent >" . int(10 * main::d(1.5)) . "
t4 latency_count >" . int(80 * main::d(1.5) / 3) . "
t4 bad_timestamps 0
t4 latency_p99_ms >0
t4 deliveries_s >20"



=== TEST 5: a bad header length from the server is counted, not fatal
--- init
Goim::Cli::start('t5', [qw(-p -d 3)], target => main::fake_comet("\0\0\0\x20\0\x11\0\1\0\0\3\xe8\0\0\0\0" . 'x' x 16));
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli
t5 client=0 op=8 seq=1 ver=1 body=
t5 client=0 bad packet: header length is not 16
--- goim_cli_summary
t5 bad_packets 1
t5 closed 1
--- goim_cli_exit
t5 0



=== TEST 6: a masked frame and a packet shorter than its frame from a WebSocket server
--- init
Goim::Cli::start('t6a', [qw(-w -p -d 3)], target => main::fake_comet("\x82\x84abcdefgh", ws => 1));
my $p = Goim::Client::pack_packet(1, 1000, 0, 'abc');
Goim::Cli::start('t6b', [qw(-w -p -d 3)], target => main::fake_comet("\x82" . chr(length($p) + 2) . $p . 'zz', ws => 1));
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli
t6a client=0 bad WebSocket frame: masked server frame
t6b client=0 bad packet: packet length differs from its frame length
--- goim_cli_summary
t6a bad_frames 1
t6b bad_packets 1



=== TEST 7: --reconnect: a client kicked by a newer connection with its key comes back
--- init
Goim::Cli::start('t7a', [qw(-p --reconnect -k cli-kick -m 701 -d), main::d(3), qw(-e 1)], auth => 1);
Goim::Cli::start('t7b', [qw(-p -k cli-kick -m 701 -d), main::d(0.3)], auth => 1);
Goim::Cli::finish('t7b');
Goim::Cli::wait_output('t7a', wait => qr/(?s)op=8 .*op=8 /);
--- request
POST /goim/push/keys?operation=1000&keys=cli-kick
back again
--- response_body
{"code":0,"message":""}
--- goim_cli
t7a client=0 closed
t7a client=0 op=1000 seq=0 ver=1 body=back again
--- goim_cli_summary
t7a authed 2
t7a closed 1
t7a reconnects 1
t7a messages 1
t7b authed 1
--- goim_cli_exit
t7a 0



=== TEST 8: random bytes from 40 servers (TCP and WebSocket) are counted, never fatal
--- init
Goim::Cli::start('t8a', [qw(-p -n 20 -d 2.5)], target => main::fake_comet(sub { main::garbage($_[0], 0) }, count => 20));
Goim::Cli::start('t8b', [qw(-w -p -n 20 -d 2.5)], target => main::fake_comet(sub { main::garbage($_[0], 1) }, count => 20, ws => 1));
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli_summary
t8a authed 20
t8a bad_packets >4
t8b authed 20
t8b bad_packets >4
--- goim_cli_exit
t8a 0
t8b 0



=== TEST 9: --ack: an ensure message comes as op 19, is acknowledged, and printed as the push inside it
--- init
Goim::Cli::start('t9', ['-p', '--ack', '--print-ensure', '-d', main::d(5), qw(-e 1 -m 590)], auth => 1);
--- request
POST /goim/push/mids?operation=1000&mids=590&ensure=1
must arrive
--- response_body_like chomp
^\{"code":0,"message":"","data":\{"id":"[0-9a-f-]{36}"\}\}$
--- goim_cli
t9 client=0 ensure id=...
t9 client=0 op=1000 seq=0 ver=1 body=must arrive
t9 client=0 ack ids=...
--- goim_cli_summary
t9 messages 1
t9 ensure 1
t9 ensure_dups 0
t9 acks_sent 1
t9 bad_packets 0
--- goim_cli_exit
t9 0



=== TEST 10: --ack-delay past job's ensure_retry: the resends are dropped as duplicates, the message counted once
--- init
Goim::Cli::start('t10', ['-w', '-p', '--ack-delay', 1000, '-d', main::d(3), qw(-m 591)], auth => 1);
--- request
POST /goim/push/mids?operation=1000&mids=591&ensure=1
once
--- response_body_like chomp
"data":\{"id":
--- goim_cli
t10 client=0 op=1000 seq=0 ver=1 body=once
--- goim_cli_summary
t10 messages 1
t10 ensure >1
t10 ensure_dups >0
t10 acks_sent >0
t10 bad_packets 0
--- goim_cli_exit
t10 0



=== TEST 11: --recover: positions taken from op 20, named again on reconnect, what was missed recovered once
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    goim_comet_room_history 100;/m;
$c
--- init
Goim::Cli::start('t11a', [qw(-p --recover --print-recover --reconnect -k cli-rec -m 711
                             -r live://711 -d), main::d(4)], auth => 1);
Goim::Recovery::room_push('live://711', 'first');
Goim::Cli::wait_output('t11a', wait => qr/pos stream=room .*body=first/);
# a newer connection with its key kicks it; it comes back naming its position
Goim::Cli::start('t11b', [qw(-p -k cli-rec -m 711 -r live://711 -d), main::d(0.3)], auth => 1);
Goim::Recovery::room_push('live://711', 'meanwhile');
Goim::Cli::finish('t11b');
Goim::Cli::wait_output('t11a', wait => qr/(?s)op=8 .*op=8 .*recovery stream=all/);
--- request
POST /goim/push/room?operation=1000&type=live&room=711
after
--- response_body
{"code":0,"message":""}
--- goim_cli
t11a client=0 closed
t11a client=0 recovery stream=room recovered=1 ...
t11a client=0 op=1000 seq=0 ver=1 body=first
t11a client=0 op=1000 seq=0 ver=1 body=meanwhile
t11a client=0 op=1000 seq=0 ver=1 body=after
--- goim_cli_summary
t11a authed 2
t11a messages 3
t11a positioned 3
t11a position_dups 0
t11a recovered >0
t11a recovery_gaps 0
t11a bad_packets 0
--- goim_cli_exit
t11a 0



=== TEST 12: --push-count: that many pushes, and goim-cli stops once they are answered, long before -d
--- init
Goim::Cli::start('t12', ['-q', '-d', main::d(60), '--push-rate', '50', '--push-count', '5',
    '-P', "http://127.0.0.1:" . Test::Nginx::Socket::server_port()
          . "/goim/push/mids?operation=1000&mids=999998"]);
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli_summary
t12 pushes_sent 5
t12 pushes_ok 5
t12 pushes_failed 0
--- goim_cli_exit
t12 0



=== TEST 13: --room-pos: a client started afresh names the position it saved and gets what followed it, counted as recovered
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    goim_comet_room_history 100;/m;
$c
--- init
Goim::Cli::start('t13a', [qw(-p --print-recover -m 713 -r live://713 -d), main::d(2)], auth => 1);
Goim::Recovery::room_push('live://713', 'seen');
my $c = Goim::Cli::wait_output('t13a', wait => qr/pos stream=room .*body=seen/);
my ($e, $s) = Goim::Cli::slurp($c->{out}) =~ /pos stream=room epoch=(\d+) seq=(\d+) .*body=seen/;
Goim::Recovery::room_push('live://713', 'missed');
Goim::Cli::start('t13b', ['-p', '--room-pos', "$e:$s", qw(-m 714 -r live://713 -e 2 -d), main::d(4)], auth => 1);
--- request
POST /goim/push/room?operation=1000&type=live&room=713
after
--- response_body
{"code":0,"message":""}
--- goim_cli
t13b client=0 op=1000 seq=0 ver=1 body=missed
t13b client=0 op=1000 seq=0 ver=1 body=after
--- goim_cli_summary
t13b authed 1
t13b messages 2
t13b positioned 2
t13b recovered 1
t13b recovery_gaps 0
--- goim_cli_exit
t13b 0



=== TEST 14: --room-pos of another epoch: a gap, counted in recovery_gaps
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    goim_comet_room_history 100;/m;
$c
--- init
Goim::Recovery::room_push('live://715', 'before');
Goim::Cli::start('t14', [qw(-p --room-pos 1:1 -m 715 -r live://715 -e 1 -d), main::d(4)], auth => 1);
--- request
POST /goim/push/room?operation=1000&type=live&room=715
after the gap
--- response_body
{"code":0,"message":""}
--- goim_cli
t14 client=0 op=1000 seq=0 ver=1 body=after the gap
--- goim_cli_summary
t14 messages 1
t14 recovered 0
t14 recovery_gaps 1
--- goim_cli_exit
t14 0




=== TEST 15: SSE: three subscribers authenticate by the token header; a room push, a body of two lines and a binary one come back as sent
--- init
Goim::Cli::start('t15', [qw(--sse -p -n 3 -m 520 -r live://cli15 -e 5 -d), main::d(5)], auth => 3);
Goim::Stack::push('/goim/push/mids?operation=1000&mids=520', "line one\nline two");
Goim::Stack::push('/goim/push/mids?operation=1000&mids=521', "\x01bin\r\n");
--- request
POST /goim/push/room?operation=1001&type=live&room=cli15
to the room
--- response_body
{"code":0,"message":""}
--- goim_cli
t15 client=0 op=8 id= body={"mid":520,"key":"...
t15 client=0 op=1000 id= body=line one\x0aline two
t15 client=1 op=1000 id= body=\x01bin\x0d\x0a
t15 client=0 op=1001 id= body=to the room
t15 client=2 op=1001 id= body=to the room
--- goim_cli_summary
t15 clients 3
t15 authed 3
t15 messages 5
t15 sse_events 8
t15 bad_events 0
t15 bad_handshakes 0
t15 hb_replies 0
--- goim_cli_exit
t15 0



=== TEST 16: SSE latency mode: timestamped room pushes through the API, measured from the events' bodies
--- init
Goim::Cli::start('t16', ['-q', '--sse', '-n', '4', '-r', 'live://sselat', '-d', main::d(1.5), '--push-rate', '20',
    '-b', '127.0.0.2-127.0.0.3',
    '-P', "http://127.0.0.1:" . Test::Nginx::Socket::server_port()
          . "/goim/push/room?operation=1000&type=live&room=sselat"]);
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli_summary eval
# as TEST 4: more than 15 of the 30 pushes, 40 of the 120 deliveries
"t16 authed 4
t16 pushes_failed 0
t16 pushes_sent >" . int(10 * main::d(1.5)) . "
t16 latency_count >" . int(80 * main::d(1.5) / 3) . "
t16 bad_timestamps 0
t16 bad_events 0
t16 latency_p99_ms >0
t16 deliveries_s >20"



=== TEST 17: --sse --raw: a plain EventSource (the token in the query here): every event is a message, whatever its name
--- init
my $tok = Goim::Sse::escape('{"mid":530,"key":"cli-raw","room_id":"live://cli17","accepts":[1000]}');
Goim::Cli::start('t17', ['--sse', '--raw', '-p', '--path', "/sse?token=$tok", '-e', 2, '-d', main::d(5)],
                 wait => qr/event=8 /);
--- request
POST /goim/push/room?operation=1000&type=live&room=cli17
raw
--- response_body
{"code":0,"message":""}
--- goim_cli
t17 client=0 event=8 id= body={"mid":530,"key":"cli-raw"...
t17 client=0 event=1000 id= body=raw
--- goim_cli_summary
t17 clients 1
t17 authed 1
t17 messages 2
t17 sse_events 2
t17 bad_events 0
--- goim_cli_exit
t17 0



=== TEST 18: comet refusing an SSE subscriber (a token logic refuses: 403; none: 401) is a bad answer, printed with goim's JSON envelope
--- init
Goim::Cli::start('t18a', ['--sse', '-p', '-T', '{"mid":"bad"', '-d', main::d(3)]);
Goim::Cli::start('t18b', ['--sse', '--raw', '-p', '-d', main::d(3)]);
Goim::Cli::start('t18c', ['--sse', '--raw', '-q', '-n', 3, '-d', main::d(3)]);
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli
t18a client=0 bad SSE answer: HTTP/1.1 403 Forbidden: {"code":-403,"message":...
t18b client=0 bad SSE answer: HTTP/1.1 401 Unauthorized: {"code":-401,"message":"no token: ...
--- goim_cli_summary
t18a bad_handshakes 1
t18a authed 0
t18a failed 1
t18b bad_handshakes 1
t18b authed 0
t18c bad_handshakes 3
--- goim_cli_exit
t18a 1
t18b 1
t18c 1



=== TEST 19: an EventSource server's stream, chunked and in 7-byte pieces: comments, CR, CRLF and LF line ends, data lines joined, events without data not dispatched
--- init
Goim::Cli::start('t19', [qw(--sse --raw -p -d 3)], target => main::fake_sse(sub {
    main::sse_head(chunked => 1) . main::chunked(": hi\n\n", "id: 1:0\ndata: one\ndata: two\n\n",
        "event: x\r\ndata:three\r\n\r\n", "data: four\r\rretry: 10\nfoo: bar\nevent: nodata\n\n",
        "data: fi", "ve\n", "\n", "data\n\n")
}, piece => 7));
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli
t19 client=0 event=message id=1:0 body=one\x0atwo
t19 client=0 event=x id= body=three
t19 client=0 event=message id= body=four
t19 client=0 event=message id= body=five
t19 client=0 event=message id= body=
--- goim_cli_summary
t19 authed 1
t19 messages 5
t19 sse_events 5
t19 sse_comments 1
t19 bad_events 0
t19 closed 1
--- goim_cli_exit
t19 0



=== TEST 20: bad SSE input: base64 that is not, a name that is no operation, another content type, an error answer, bad chunked framing
--- init
my $auth = "event: 8\ndata: {\"mid\":1}\n\n";
Goim::Cli::start('t20a', [qw(--sse -p -d 3)], target => main::fake_sse(sub {
    main::sse_head() . $auth . "event: 1000.b64\ndata: AAEC\n\nevent: 1000\ndata: ok\n\nevent: 1000.b64\ndata: A!==\n\n" }));
Goim::Cli::start('t20b', [qw(--sse -p -d 3)], target => main::fake_sse(sub {
    main::sse_head() . $auth . "event: oops\ndata: x\n\n" }));
Goim::Cli::start('t20c', [qw(--sse -p -d 3)], target => main::fake_sse(sub {
    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" . $auth }));
Goim::Cli::start('t20d', [qw(--sse -p -d 3)], target => main::fake_sse(sub {
    "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 13\r\n\r\nupstream gone" }, piece => 40));
Goim::Cli::start('t20e', [qw(--sse -p -d 3)], target => main::fake_sse(sub {
    main::sse_head(chunked => 1) . "zz\r\n" . $auth }));
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli
t20a client=0 op=8 id= body={"mid":1}
t20a client=0 op=1000 id= body=\x00\x01\x02
t20a client=0 op=1000 id= body=ok
t20a client=0 bad SSE event: bad base64
t20b client=0 bad SSE event: its name is not an operation
t20c client=0 bad SSE answer: HTTP/1.1 200 OK: not text/event-stream
t20d client=0 bad SSE answer: HTTP/1.1 502 Bad Gateway: upstream gone
t20e client=0 bad SSE event: bad chunked encoding
--- goim_cli_summary
t20a messages 2
t20a bad_events 1
t20a closed 1
t20b bad_events 1
t20b closed 1
t20c bad_handshakes 1
t20d bad_handshakes 1
t20e bad_events 1
t20e authed 0
--- goim_cli_exit
t20a 0
t20b 0
t20c 1
t20d 1
t20e 1



=== TEST 21: random event-stream lines from 20 servers (half of them chunked) after op 8 are counted, never fatal
--- init
Goim::Cli::start('t21', [qw(--sse -p -n 20 -d 2.5)], target => main::fake_sse(sub {
    my $i = shift;
    my $body = "event: 8\ndata: {}\n\n" . main::sse_garbage($i);
    main::sse_head(chunked => $i % 2) . ($i % 2 ? main::chunked($body) : $body)
}, count => 20));
--- request
POST /goim/push/mids?operation=1000&mids=999999
x
--- response_body
{"code":0,"message":""}
--- goim_cli_summary
t21 authed 20
t21 bad_events >2
--- goim_cli_exit
t21 0
