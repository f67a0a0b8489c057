# Pipelined pushes that hop between workers: the worker that reads job's
# connection hands other workers' keys over their queues in shared memory;
# the owner takes at most goim_comet_push batch= records per wake-up, so
# its clients' writes interleave and a burst for one client is not dropped
# (it overflowed goim_comet_queue before).  Two workers, reuseport spreads
# the clients.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::PushRpc;
use Goim::RouterRpc;
use Goim::Time;

master_on();
workers(2);

our @Keys = map { "w$_" } 1 .. 8;

Goim::Workers::reuseport();

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: 300 pipelined pushes for each of 8 clients on two workers, a client's in a row: all delivered, in order
--- init
my %c = map { $_ => Goim::Stack::client($_, '{"mid":7,"key":"' . $_ . '","accepts":[1000]}', 1) } @main::Keys;
my $s = Goim::RouterRpc::connect($ENV{TEST_NGINX_PUSH_PORT});
my ($seq, $bytes) = (0, '');
for my $k (@main::Keys) {
    $bytes .= Goim::PushRpc::push_msg(++$seq, $k, "$k-$_") for 1 .. 300;
}
print $s $bytes;
Test::More::is(scalar(Goim::PushRpc::read_frames($s, 2400, Goim::Time::scaled(5))), 2400, 'TEST 1 - 2400 replies');
for my $k (@main::Keys) {
    my @got;
    while (@got < 300) {
        my $p = $c{$k}->read_packet(3) or last;
        push @got, $p->{body};
    }
    Test::More::is(join(',', @got), join(',', map { "$k-$_" } 1 .. 300), "TEST 1 - $k got its 300 pushes");
}
--- request
GET /status
--- response_body_like chomp
"dropped":0,"dropped_worker_queue":0,"write_slices":\d+\},"workers_queue":\{"records":[1-9]
--- no_error_log
push dropped
[error]
[alert]
[crit]
