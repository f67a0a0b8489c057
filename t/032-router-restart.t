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
use Goim::Time;

# the renewal period: 1 s, scaled for slow runs (Goim::Time), so that
# "within one period" means the same there
our $Period = Goim::Time::scaled(1);

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
    goim_comet_renew_interval ${Period}s;
    goim_comet_online_interval ${Period}s;/ or die "no goim_comet_id in the stack's config\n";

# the time of the first line of the restarted router's log matching $re
sub logged_at {
    my ($re) = @_;
    my ($line) = grep { $_ =~ $re } split /\n/, $Goim::Stack::Router->log;
    return Goim::Time::log_time($line);
}

run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: after kill -9 and a restart, the session is back within one renewal period
--- init
my $c = Goim::Stack::client('c1', '{"mid":700,"room_id":"live://70","accepts":[1000]}', 1);
my $port = $ENV{TEST_NGINX_ROUTER_PORT};
Test::More::is(main::stats($port)->{sessions}, 1, 'TEST 1 - the session is in router');

main::crash_and_restart();
Test::More::is(main::stats($port)->{sessions}, 0, 'TEST 1 - the restarted router is empty');

# the client heartbeats as clients do (faster here); the renewal rides on
# them.  Until the router logged the session's renewal and the comet's
# registration; the time is the router's, from its start to the later of
# the two, not this loop's
my $seq = 10;
my $back = qr/Router\.SessionRenew/;
my $registered = qr/comet comet-test registered/;
Goim::Time::wait_until(sub {
    $c->heartbeat($seq++, $main::Period) or die "no heartbeat reply\n";
    defined main::logged_at($back) && defined main::logged_at($registered);
}, 5, 0.1);
my $s = main::stats($port);
Test::More::is($s->{sessions}, 1, 'TEST 1 - the session came back');
Test::More::is($s->{comets}, 1, 'TEST 1 - the comet registered again');
my ($t0, $t1, $t2) = map { main::logged_at($_) } qr/goim-router started/, $back, $registered;
my $took = ($t1 > $t2 ? $t1 : $t2) - $t0;
Test::More::cmp_ok($took, '<', $main::Period + Goim::Time::scaled(0.5),
    sprintf('TEST 1 - within one renewal period (%g s) plus a heartbeat (%.2f s)', $main::Period, $took));
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
my $seq = 10;
Goim::Time::wait_until(sub {
    $c->heartbeat($seq++, $main::Period) or die "no heartbeat reply\n";
    main::stats($ENV{TEST_NGINX_ROUTER_PORT})->{sessions};
}, 5, 0.1);
--- request
GET /goim/online/room?type=live&rooms=71
--- response_body
{"code":0,"message":"","data":{"71":1}}
