# A connection's accepted operations (op 14 Sub, op 16 Unsub) are a
# bounded set: past goim_comet_max_accepts the client is closed, and no Sub
# or Unsub, however long its list, stalls the worker's other clients.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use POSIX ();
use Time::HiRes qw(time);
use Goim::Stack;
use Goim::Client;
use Goim::RouterRpc;

sub tok { '{"mid":' . $_[0] . ',"accepts":[' . ($_[1] // '1000') . ']}' }
sub ops { join ',', $_[0] .. $_[1] }

# how long a heartbeat waits while another client is busy: the bound is the
# point (the worker must not stall), scaled for valgrind.  Measured: 0.06 s
# idle, 0.4 s with both cores busy, 1.25 s under valgrind; 10.7 s with
# goim's nested loops.
our $HeartbeatBound = $ENV{GOIM_SANITIZE} ? 30 : 3;

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: the default cap (1024): a Sub past it closes the client, logged; pushes up to it arrive
--- init
my $c = Goim::Stack::client('capped', main::tok(2400), 1);
Goim::Stack::client('calm', main::tok(2401), 1);
$c->send_packet(1, 14, 2, main::ops(2000, 2599));
$c->send_packet(1, 14, 3, main::ops(3000, 3422));
$c->wait_for_op(15, 5) for 1 .. 2;
$c->send_packet(1, 2, 4, '');
$c->wait_for_op(3, 5);
$c->send_packet(1, 14, 5, '3423');
--- request
POST /goim/push/mids?operation=1000&mids=2401
still here
--- response_body
{"code":0,"message":""}
--- goim_closed
capped
--- goim_receive
calm op=1000 seq=0 ver=1 body=still here
--- error_log
sub of 1 operations would accept more than 1024 (goim_comet_max_accepts)
closing: too many operations subscribed



=== TEST 2: duplicates do not count, Unsub makes room, the cap is a directive; WebSocket too
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/goim_comet;/goim_comet; goim_comet_max_accepts 4;/;
$c
--- config eval
my $c = $Goim::Stack::Config;
$c =~ s/goim_comet_ws;/goim_comet_ws; goim_comet_max_accepts 2;/;
$c
--- init
my $c = Goim::Stack::client('four', main::tok(2410), 1);
$c->send_packet(1, 14, 2, '1,2,3,3,1000,2');
$c->send_packet(1, 16, 3, '1');
$c->send_packet(1, 14, 4, '5');
my @r = map { $c->read_packet(5) } 1 .. 3;
Test::More::is(join(' ', map { "$_->{op}/$_->{seq}" } grep { $_ } @r), '15/2 17/3 15/4',
               'TEST 2 - four operations with duplicates, one removed, one added');
Goim::Stack::push('/goim/push/mids?operation=5&mids=2410', 'five');
my $p = $c->read_packet(5);
Test::More::is($p && $p->{body}, 'five', 'TEST 2 - the added operation is accepted');
$c->send_packet(1, 14, 5, '6');
my $w = Goim::Stack::client('ws', main::tok(2411), 1, transport => 'ws');
$w->send_packet(1, 14, 2, '1000,7');
$w->send_packet(1, 14, 3, '8');
Goim::Stack::client('many', main::tok(2412, '1,2,3,4,5'), 1);
--- request
GET /goim/x
--- error_code: 404
--- goim_auth
many none
--- goim_closed
four
ws
--- error_log
would accept more than 4 (goim_comet_max_accepts)
would accept more than 2 (goim_comet_max_accepts)
the token accepts more than 4 operations (goim_comet_max_accepts)



=== TEST 3: long Sub and Unsub lists from one client do not hold up another client's heartbeat
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/goim_comet;/goim_comet; goim_comet_max_body 1m; goim_comet_max_accepts 65536;/;
$c
--- init
my $h = Goim::Stack::client('hostile', main::tok(2420), 1);
my $calm = Goim::Stack::client('calm2', main::tok(2421), 1);
$h->send_packet(1, 14, 1, main::ops(100000, 159999));
die "the first Sub got no reply\n" unless $h->wait_for_op(15, 120);
# the same 60000 operations again, and 60000 it does not have, 20 times
my $batch = join '', map {
    Goim::Client::pack_packet(1, $_ % 2 ? 14 : 16, $_,
                              $_ % 2 ? main::ops(100000, 159999)
                                     : main::ops(200000, 259999))
} 2 .. 21;
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    $h->send_raw($batch);
    POSIX::_exit(0);
}
# the worker is working through the batch once its first replies are out
my $first = $h->read_packet(60);
my $t0 = time;
my $hb = $calm->heartbeat(99, 60);
my $took = time - $t0;
Test::More::ok($first && $hb, 'TEST 3 - the heartbeat reply arrives while the other client is busy');
Test::More::cmp_ok($took, '<', $main::HeartbeatBound,
                   sprintf('TEST 3 - within %g s (%.3f s)', $main::HeartbeatBound, $took));
my $last;
while (my $p = $h->read_packet(120)) {
    $last = $p, last if $p->{seq} == 21;
}
Test::More::ok($last && $last->{op} == 15, 'TEST 3 - the busy client got every reply');
waitpid $pid, 0;
--- request
POST /goim/push/mids?operation=159999&mids=2420
hostile still served
--- response_body
{"code":0,"message":""}
--- goim_receive
hostile op=159999 seq=0 ver=1 body=hostile still served



=== TEST 4: a client refused for its token's accepts leaves no session behind in router
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/goim_comet;/goim_comet; goim_comet_max_accepts 2;/;
$c
--- init
my $tok = '{"mid":2430,"key":"refused-key","accepts":[1,2,3]}';
Goim::Stack::client('over', $tok, 1);
Goim::Stack::client('kept', '{"mid":2431,"key":"kept-key","accepts":[1,2]}', 1);
# router's sessions for both keys (SessionsByKeys, 305): the refused one is
# taken back by a Disconnect after the refusal, so wait for that
my $sessions = sub {
    my ($op, $body) = Goim::RouterRpc::call($ENV{TEST_NGINX_ROUTER_PORT}, 305,
        Goim::RouterRpc::f_bytes(1, 'refused-key') . Goim::RouterRpc::f_bytes(1, 'kept-key'));
    return join ' ', sort map { { map { $_->[0] => $_->[1] } Goim::RouterRpc::decode($_->[1]) }->{2} }
                          Goim::RouterRpc::decode($body // '');
};
my $deadline = time + ($ENV{GOIM_SANITIZE} ? 30 : 5);
my $got = $sessions->();
while ($got ne 'kept-key' && time < $deadline) {
    select undef, undef, undef, 0.05;
    $got = $sessions->();
}
Test::More::is($got, 'kept-key', 'TEST 4 - router holds the accepted session only');
--- request
GET /goim/x
--- error_code: 404
--- goim_auth
over none
--- error_log
the token accepts more than 2 operations (goim_comet_max_accepts)
closing: registration failed
