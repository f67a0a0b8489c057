# Router or job unreachable: 503 with a reason within goim_logic_rpc_timeout,
# never a hang, whether the daemon is gone (refused) or alive but silent
# (timeout); a daemon started again on the same port is used again.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use IO::Socket::INET;
use Time::HiRes qw(time);
use HTTP::Tiny;
use Goim::Time;

our $Silent;    # accepts connections, never answers
our $T0;        # when a block's --- init ended

# 500 ms, scaled for slow runs (Goim::Time) like the stack's other timeouts
our $RpcTimeout = 0.5 * Goim::Time::scale();
$Goim::Stack::MainConfig =~ s/(goim_comet_id comet-test;)/$1\n    goim_logic_rpc_timeout ${\ int($RpcTimeout * 1000)}ms;/;

$Goim::Stack::Config .= <<'_EOC_';
    location /1/ {
        goim_logic_api_v1;
    }

    location = /logic-status {
        goim_logic_status;
    }
_EOC_

sub restart {
    my $name = shift;
    my $old = $name eq 'job' ? $Goim::Stack::Job : $Goim::Stack::Router;
    my $d = Goim::Daemon->start($name, port => $old->port);
    if ($name eq 'job') { $Goim::Stack::Job = $d } else { $Goim::Stack::Router = $d }
}

Goim::Stack::setup();

# after setup(): the preprocessor added last runs first (as in the real
# Test::Nginx), so this one, not the stack's, sets --- no_error_log: with a
# daemon gone nginx logs its refused connects as [error]
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]")
        unless defined $block->no_error_log;
    $block->set_value('timeout', Goim::Time::scaled(3)) unless defined $block->timeout;
});

# --- answered_after_timeout: the request was answered after logic's RPC
# timeout, and not much later, counted from the end of the block's
# --- init ($main::T0) to its response
add_response_body_check(sub {
    my ($block) = @_;
    return unless defined $block->answered_after_timeout;
    my $took = time - $main::T0;
    my $name = $block->name;
    Test::More::cmp_ok($took, '>=', 0.8 * $main::RpcTimeout,
                       sprintf('%s - waited for the %g s timeout (%.2f s)', $name, $main::RpcTimeout, $took));
    Test::More::cmp_ok($took, '<', $main::RpcTimeout + Goim::Time::scaled(1.5),
                       "$name - and not much longer");
});

run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: all well: a room push goes through job
--- request
POST /goim/push/room?operation=1000&type=live&room=1
x
--- response_body
{"code":0,"message":""}



=== TEST 2: job stopped: room pushes get a 503 naming the queue
--- init
$Goim::Stack::Job->stop;
--- request eval
["POST /goim/push/room?operation=1000&type=live&room=1\nx",
 "POST /goim/push/all?operation=1000\nx",
 "POST /1/push/all\nx"]
--- error_code eval
[503, 503, 503]
--- response_body_like eval
['^\{"code":-500,"message":"queue: .+"\}$',
 '^\{"code":-500,"message":"queue: .+"\}$',
 '^\{"ret":65535,"message":"queue: .+"\}$']



=== TEST 3: the queue errors are counted
--- init
HTTP::Tiny->new(timeout => Goim::Time::scaled(3))->post('http://127.0.0.1:' . Test::Nginx::Socket::server_port()
                                    . "/goim/push/all?operation=1000", {content => 'x'}) for 1 .. 2;
--- request
GET /logic-status
--- response_body_like
(?m)^goim_logic_queue_errors_total 2$



=== TEST 4: job back on its port: pushes go through again
--- init
main::restart('job');
--- request
POST /goim/push/all?operation=1000
x
--- response_body
{"code":0,"message":""}



=== TEST 5: router stopped: every endpoint that needs it gets a 503 naming it
--- init
$Goim::Stack::Router->stop;
--- request eval
["POST /goim/push/mids?operation=1000&mids=1\nx",
 "POST /goim/push/keys?operation=1000&keys=k\nx",
 "GET /goim/online/top?type=live&limit=1",
 "GET /goim/online/room?type=live&rooms=1",
 "GET /goim/online/total",
 "GET /goim/nodes/weighted",
 "GET /goim/nodes/instances",
 "POST /1/push?uid=1\nx",
 "GET /1/count?type=room",
 "POST /1/server/del?server=x"]
--- error_code eval
[(503) x 10]
--- response_body_like eval
[('^\{"code":-500,"message":"router 127\.0\.0\.1:\d+: .+"\}$') x 7,
 ('^\{"ret":65535,"message":"router 127\.0\.0\.1:\d+: .+"\}$') x 3]



=== TEST 6: a router that accepts but never answers: 503 after the RPC timeout, not a hang
--- init
$main::Silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $Goim::Stack::Router->port,
                                      Listen => 16, ReuseAddr => 1) or die "listen: $!\n";
$main::T0 = time;
--- request
GET /goim/online/total
--- error_code: 503
--- response_body_like
^\{"code":-500,"message":"router 127\.0\.0\.1:\d+: .+"\}$
--- answered_after_timeout
--- no_error_log
[alert]
[crit]



=== TEST 7: a router on the port again: it is used again
--- init
close $main::Silent;
main::restart('router');
--- request
GET /goim/online/total
--- response_body_like
^\{"code":0,"message":"","data":\{"conn_count":\d+,"ip_count":\d+,"session_count":\d+\}\}$
