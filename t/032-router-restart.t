# goim-router keeps its state in memory only.  After kill -9 and a restart
# on the same port, the sessions come back as comets renew them (comet ->
# logic Heartbeat -> router SessionRenew, which re-adds a lost session,
# every goim_comet_renew_interval, riding on client heartbeats), and the
# comet registers again with its next RenewOnline: a push by mid reaches
# the client again within one renewal period.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use Time::HiRes qw(time sleep);

sub stats {
    my $port = shift;
    my $bin = Goim::Daemon::build_dir() . '/goim-router';
    my %h = map { /^(\w+)=(-?\d+)$/ ? ($1, $2) : () } `$bin --stats 127.0.0.1:$port 2>/dev/null`;
    return \%h;
}

# kill -9 the stack's router, start a fresh one on the same port
sub crash_and_restart {
    my $old = $Goim::Stack::Router;
    kill 'KILL', $old->pid;
    waitpid $old->pid, 0;
    $old->{stopped} = 1;
    $Goim::Stack::Router = Goim::Daemon->start('router', name => 'router-restarted',
                                               port => $old->port);
}

Goim::Stack::setup();

$Goim::Stack::MainConfig =~ s/(goim_comet_id [^;]+;)/$1
    goim_comet_renew_interval 1s;
    goim_comet_online_interval 1s;/ or die "no goim_comet_id in the stack's config\n";

run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: after kill -9 and a restart, the session is back within one renewal period
--- init
my $c = Goim::Stack::client('c1', '{"mid":700,"room_id":"live://70","accepts":[1000]}', 1);
my $port = $ENV{TEST_NGINX_ROUTER_PORT};
Test::More::is(main::stats($port)->{sessions}, 1, 'TEST 1 - the session is in router');

main::crash_and_restart();
my $t0 = time;
Test::More::is(main::stats($port)->{sessions}, 0, 'TEST 1 - the restarted router is empty');

# the client heartbeats as clients do (faster here); the renewal rides on them
my ($s, $seq) = ({}, 10);
while (time - $t0 < 5) {
    $c->heartbeat($seq++, 1) or die "no heartbeat reply\n";
    $s = main::stats($port);
    last if $s->{sessions} && $s->{comets};
    sleep 0.1;
}
my $took = time - $t0;
Test::More::is($s->{sessions}, 1, 'TEST 1 - the session came back');
Test::More::is($s->{comets}, 1, 'TEST 1 - the comet registered again');
Test::More::cmp_ok($took, '<', $ENV{GOIM_SANITIZE} ? 2.5 : 1.5, sprintf('TEST 1 - within one renewal period (1 s) plus a heartbeat (%.2f s)', $took));
--- request
POST /goim/push/mids?operation=1000&mids=700
after the restart
--- response_body
{"code":0,"message":""}
--- goim_receive
c1 op=1000 seq=0 ver=1 body=after the restart



=== TEST 2: the room count is rebuilt from the renewals too
--- init
my $c = Goim::Stack::client('c2', '{"mid":701,"room_id":"live://71","accepts":[1000]}', 1);
main::crash_and_restart();
my ($t0, $seq, $n) = (time, 10, 0);
while (time - $t0 < 5) {
    $c->heartbeat($seq++, 1) or die "no heartbeat reply\n";
    last if ($n = main::stats($ENV{TEST_NGINX_ROUTER_PORT})->{sessions});
    sleep 0.1;
}
--- request
GET /goim/online/room?type=live&rooms=71
--- response_body
{"code":0,"message":"","data":{"71":1}}
