# A router or job that is alive but does not serve (SIGSTOP): its socket
# stays open, so only time says it is gone.  After goim_logic_rpc_max_timeouts
# calls in a row timed out, or once goim_logic_rpc_max_backlog bytes wait
# behind full kernel buffers, logic closes the link, fails its calls at
# once for goim_logic_rpc_retry, then reconnects; service resumes after
# SIGCONT.  And logic's own RPC listener bounds its frames.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Log;
use Goim::RouterRpc;
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

$SIG{PIPE} = 'IGNORE';

our $Slow = $ENV{TEST_NGINX_USE_VALGRIND} || $ENV{GOIM_SANITIZE} ? 10 : 1;

# short, so stopped daemons cost little; valgrind's nginx on a loaded
# machine needs longer for a call that is answered
our $RpcTimeout = $Slow > 1 ? '2s' : '500ms';

$Goim::Stack::MainConfig =~ s/(goim_comet_id comet-test;)/$1
    goim_logic_rpc_timeout $RpcTimeout;
    goim_logic_rpc_retry 2s;/;

our $BacklogConfig = $Goim::Stack::MainConfig;
$BacklogConfig =~ s/(goim_comet_id comet-test;)/$1
    goim_logic_rpc_max_timeouts 0;
    goim_logic_rpc_max_backlog 1m;/;

$Goim::Stack::Config .= <<'_EOC_';
    location = /logic-status {
        goim_logic_status;
    }
_EOC_

sub url { 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . shift }

# GET or POST until the answer is 200 (true) or $timeout seconds passed
sub wait_ok {
    my ($method, $path, $body, $timeout) = @_;
    my $http = HTTP::Tiny->new(timeout => 5 * $Slow);
    my $deadline = time + $timeout * $Slow;
    while (time < $deadline) {
        my $r = $http->request($method, url($path), defined $body ? {content => $body} : {});
        return 1 if $r->{status} == 200;
        select undef, undef, undef, 0.1;
    }
    return 0;
}

# $n POSTs of $body sent at once; their status codes, in order
sub posts {
    my ($path, $body, $n) = @_;
    my @s;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => Test::Nginx::Socket::server_port(),
                                      Proto => 'tcp', Timeout => 5) or die "connect: $!\n";
        print $s "POST $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                 . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
        push @s, $s;
    }
    my @codes;
    for my $s (@s) {
        my $sel = IO::Select->new($s);
        my $reply = '';
        while ($sel->can_read(10 * $Slow)) {
            my $r = sysread $s, $reply, 65536, length $reply;
            last unless $r;
        }
        push @codes, $reply =~ m{^HTTP/1\.1 (\d+)} ? $1 : 'none';
        close $s;
    }
    return @codes;
}

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: all well
--- init
Test::More::ok(main::wait_ok('GET', '/goim/online/total', undef, 10), 'TEST 1 - router answers');
--- request
GET /goim/online/total
--- response_body_like chomp
^\{"code":0,



=== TEST 2: router stopped: calls time out, the link is reset, calls then fail at once; SIGCONT: service resumes
--- init
my $http = HTTP::Tiny->new(timeout => 5 * $main::Slow);
# the link to router is open (valgrind's first calls may time out)
Test::More::ok(main::wait_ok('GET', '/goim/online/total', undef, 10), 'TEST 2 - router answers');
kill 'STOP', $Goim::Stack::Router->pid;
my @codes = map { $http->get(main::url('/goim/online/total'))->{status} } 1 .. 3;
Test::More::is("@codes", '503 503 503', 'TEST 2 - three calls timed out');
Test::More::ok(Goim::Log::wait_for(qr/goim rpc: closing the connection to 127\.0\.0\.1:\d+ \(upstream is not answering\), calls fail for 2000 ms/, 5 * $main::Slow),
               'TEST 2 - the link was reset');
Test::More::like($http->get(main::url('/logic-status'))->{content},
                 qr/(?m)^goim_logic_rpc_link_resets_total [1-9]\d*$/, 'TEST 2 - and counted');
my $r = $http->get(main::url('/goim/online/total'));
Test::More::like("$r->{status} $r->{content}", qr/^503 .*upstream is down/, 'TEST 2 - a call fails at once while it is down');
kill 'CONT', $Goim::Stack::Router->pid;
Test::More::ok(main::wait_ok('GET', '/goim/online/total', undef, 10), 'TEST 2 - service resumed');
Test::More::ok(Goim::Log::wait_for(qr/goim rpc: reconnecting to 127\.0\.0\.1:\d+/, 1 * $main::Slow), 'TEST 2 - after a reconnection');
--- request
GET /goim/online/total
--- response_body_like chomp
^\{"code":0,
--- error_log eval
qr/goim rpc: \d+ calls to 127\.0\.0\.1:\d+ in a row timed out/
--- no_error_log
[alert]
[crit]



=== TEST 3: job stopped under 1 MB pushes: the bytes waiting for it stay under max_backlog (+ one call), the link is reset; SIGCONT: pushes go through
--- main_config eval: $main::BacklogConfig
--- config eval
(my $c = $Goim::Stack::Config) =~ s/goim_logic_api;/goim_logic_api;\n        client_body_buffer_size 2m;/;
$c
--- init
Test::More::ok(main::wait_ok('POST', '/goim/push/all?operation=1000', 'x', 5), 'TEST 3 - job answers');
kill 'STOP', $Goim::Stack::Job->pid;
my @codes = main::posts('/goim/push/all?operation=1000', 'b' x (1 << 20), 40);
Test::More::is(scalar(grep { $_ eq '503' } @codes), 40, 'TEST 3 - every push got a 503') or Test::More::diag("codes: @codes");
Test::More::ok(Goim::Log::wait_for(qr/goim rpc: closing the connection to 127\.0\.0\.1:\d+ \(upstream is not reading\)/, 5 * $main::Slow),
               'TEST 3 - the link was reset');
Test::More::like(HTTP::Tiny->new(timeout => 5 * $main::Slow)->get(main::url('/logic-status'))->{content},
                 qr/(?m)^goim_logic_rpc_link_resets_total [1-9]\d*$/, 'TEST 3 - and counted');
my ($waiting) = Goim::Log::text() =~ /does not read: (\d+) bytes wait to be sent/;
Test::More::diag("TEST 3: " . ($waiting // 'no') . " bytes waited for job when the link was reset");
Test::More::cmp_ok($waiting // 1e12, '<=', (1 << 20) + (1 << 20) + 4096, 'TEST 3 - at most max_backlog and one call waited');
kill 'CONT', $Goim::Stack::Job->pid;
Test::More::ok(main::wait_ok('POST', '/goim/push/all?operation=1000', 'x', 10), 'TEST 3 - pushes go through again');
--- request
POST /goim/push/all?operation=1000
x
--- response_body
{"code":0,"message":""}
--- no_error_log
[alert]
[crit]



=== TEST 4: logic's RPC listener: a frame over max_frame closes the connection when its header arrives
--- main_config eval
(my $c = $Goim::Stack::MainConfig) =~ s/goim_logic_rpc;/goim_logic_rpc max_frame=1k;/;
$c
--- init
# past the handshake (the stack's secret), then a frame over max_frame
my $s = Goim::RouterRpc::connect($ENV{TEST_NGINX_LOGIC_PORT});
print $s pack('N n n N N', 16 + 2048, 16, 1, 103, 1) . 'h' x 100;
my $sel = IO::Select->new($s);
my $closed = 0;
while ($sel->can_read(3 * $main::Slow)) { my $r = sysread $s, my $junk, 4096; if (!$r) { $closed = 1; last } }
Test::More::ok($closed, 'TEST 4 - closed');
--- request
GET /logic-status
--- response_body_like
(?m)^goim_logic_rpc_bad_input_total 1$
--- error_log eval
qr/goim rpc: bad frame from 127\.0\.0\.1: .*too large/
--- no_error_log
[alert]
[crit]



=== TEST 5: a bad goim_logic_rpc parameter stops nginx with one line
--- main_config eval
(my $c = $Goim::Stack::MainConfig) =~ s/goim_logic_rpc;/goim_logic_rpc batch=0;/;
$c
--- must_die
--- error_log
batch must be 1 to 65536
