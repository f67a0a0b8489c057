# goim-job loses nothing: SIGKILLed in the middle of a stream of pushes and
# started again, every record produced reaches the online client
# (duplicates are allowed and counted, none may be missing); with the
# Kafka broker stopped logic answers 503 within its timeout, and
# everything resumes when the broker returns.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Time::HiRes qw(sleep time);
use Goim::Daemon;
use Goim::Kafka;
use Goim::Stack;
use Goim::Time;

our $Kafka = Goim::Kafka->start(partitions => 4);
our $T0;    # when TEST 3's --- init ended
# a small max_inflight: the backlog after the restart pauses consumption
our @JobArgs = ('--kafka-brokers', $Kafka->brokers, '--kafka-topic', $Kafka->topic,
                '--kafka-group', "job-041-$$", '--max-inflight', '8');

# goim-job --stats of the running job, as a hash
sub job_stats {
    my $bin = Goim::Daemon::build_dir() . '/goim-job';
    my $addr = $Goim::Stack::Job->addr;
    my %st = map { /^(\w+)=(-?\d+)$/ ? ($1 => $2) : () }
             split /\n/, qx{$bin --stats $addr} // '';
    return \%st;
}

Goim::Stack::setup(job_args => \@JobArgs);
$Goim::Stack::MainConfig =~ s{goim_logic_job [^;]*;}
    {goim_logic_queue kafka=\$TEST_NGINX_KAFKA_BROKERS topic=\$TEST_NGINX_KAFKA_TOPIC;};

# pushes until one reaches client $c (the stack is up again): true if it did
sub wait_flowing {
    my ($c, $port, $deadline) = @_;
    my $n = 0;
    while (time < $deadline) {
        $n++;
        my ($st) = Goim::Kafka::http_post($port, "/goim/push/mids?operation=1000&mids=701", "probe$n");
        if ($st == 200) {
            # the latest probe: the ones before it came first (one partition)
            while (my $p = $c->read_packet(Goim::Time::scaled(1))) {
                return 1 if $p->{body} eq "probe$n";
            }
            return 0 if $c->eof;
        } else {
            sleep 0.2;
        }
    }
    return 0;
}

# logic's RPC timeout, which is also its Kafka produce timeout (1 s unless
# the stack's configuration sets it)
sub rpc_timeout {
    return $Goim::Stack::MainConfig =~ /goim_logic_rpc_timeout (\d+)(ms|s);/
           ? $1 / ($2 eq 'ms' ? 1000 : 1) : 1;
}

# --- answered_within_timeout: the block's request was answered within
# logic's timeout and some slack, counted from the end of its --- init
# ($main::T0) to its response: nginx's restart for the next block is not
# part of it
add_response_body_check(sub {
    my ($block) = @_;
    return unless defined $block->answered_within_timeout;
    my $took = time - $main::T0;
    my $bound = rpc_timeout() + Goim::Time::scaled(2);
    Test::More::cmp_ok($took, '<', $bound,
        $block->name . sprintf(' - answered in %.2f s, within the %g s timeout', $took, rpc_timeout()));
});

run_tests();
Goim::Stack::teardown();
$Kafka->finish;

__DATA__

=== TEST 1: job SIGKILLed mid-stream and restarted: every record arrives
--- init
my $c = Goim::Stack::client('k1', '{"mid":601,"room_id":"live://crash","accepts":[1000]}', 1);
my $port = Test::Nginx::Socket::server_port();
my $n = 400;
my (%seen, $dups);
my $read = sub {
    my $t = shift;
    while (my $p = $c->read_packet($t)) {
        $dups++ if $seen{$p->{body}}++;
        last if keys %seen == $n;
    }
};
for my $i (1 .. $n) {
    # by mid and by room, alternately: both paths must lose nothing
    my $path = $i % 2 ? "/goim/push/mids?operation=1000&mids=601"
                      : "/goim/push/room?operation=1000&type=live&room=crash";
    my ($st, $body) = Goim::Kafka::http_post($port, $path, "p$i");
    die "push $i: $st $body\n" unless $st == 200;
    if ($i == 150) {
        $Goim::Stack::Job->crash;                       # SIGKILL
    }
    if ($i == 250) {
        $Goim::Stack::Job = Goim::Daemon->start('job', name => 'job-restarted',
            port => $Goim::Stack::Job->port, args => \@main::JobArgs);
    }
    $read->(0) if $i % 20 == 0;
}
$read->(30);
my @missing = grep { !$seen{"p$_"} } 1 .. $n;
Test::More::is(scalar(@missing), 0, "TEST 1: no record missing (missing: @missing[0 .. ($#missing > 9 ? 9 : $#missing)])");
Test::More::note("TEST 1: $n records, " . ($dups // 0) . " duplicates after the SIGKILL");
my $st = main::job_stats();
Test::More::cmp_ok($st->{kafka_pauses} // 0, '>', 0, 'TEST 1: the backlog paused consumption');
Test::More::is($st->{kafka_bad}, 0, 'TEST 1: no bad record');
--- request
POST /goim/push/mids?operation=1000&mids=601
after
--- response_body
{"code":0,"message":""}
--- goim_receive
k1 op=1000 seq=0 ver=1 body=after



=== TEST 2: SIGTERM finishes what is in flight and commits: a restarted job redelivers nothing
--- init
my $c = Goim::Stack::client('k4', '{"mid":801,"room_id":"live://term","accepts":[1000]}', 1);
my $port = Test::Nginx::Socket::server_port();
my $n = 100;
my %seen;
my $dups = 0;
for my $i (1 .. $n) {
    my $path = $i % 2 ? "/goim/push/mids?operation=1000&mids=801"
                      : "/goim/push/room?operation=1000&type=live&room=term";
    my ($st, $body) = Goim::Kafka::http_post($port, $path, "t$i");
    die "push $i: $st $body\n" unless $st == 200;
    if ($i == 60) {
        $Goim::Stack::Job->stop;                        # SIGTERM: exits 0
        $Goim::Stack::Job = Goim::Daemon->start('job', name => 'job-after-term',
            port => $Goim::Stack::Job->port, args => \@main::JobArgs);
    }
}
while (my $p = $c->read_packet(Goim::Time::scaled(5))) {
    $dups++ if $seen{$p->{body}}++;
    last if keys %seen == $n;
}
my @missing = grep { !$seen{"t$_"} } 1 .. $n;
Test::More::is("@missing", '', 'TEST 2: no record missing');
Test::More::is($dups, 0, 'TEST 2: no record delivered twice after a SIGTERM');
--- request
POST /goim/push/mids?operation=1000&mids=801
after term
--- response_body
{"code":0,"message":""}
--- goim_receive
k4 op=1000 seq=0 ver=1 body=after term



=== TEST 3: the broker is down: logic answers 503 within its timeout
--- init
Goim::Stack::client('k2', '{"mid":701,"accepts":[1000]}', 1);
$main::Kafka->stop;
$main::T0 = time;
--- request
POST /goim/push/mids?operation=1000&mids=701
while down
--- error_code: 503
--- response_body_like: ^\{"code":-500,"message":"queue: .+"\}$
--- answered_within_timeout
--- timeout eval
# the answer comes after logic's timeout, which a slow run scales
main::rpc_timeout() + Goim::Time::scaled(3)
--- error_log
goim kafka



=== TEST 4: the broker is back: pushes flow again
--- init
$main::Kafka->start_again;
Goim::Stack::client('k3', '{"mid":701,"accepts":[1000]}', 1);
Test::More::ok(main::wait_flowing($Goim::Stack::Clients{k3}{client},
                                  Test::Nginx::Socket::server_port(),
                                  time + Goim::Time::scaled(30)),
               'TEST 4: pushes flow again after the broker returned');
--- request
POST /goim/push/mids?operation=1000&mids=701
back again
--- response_body
{"code":0,"message":""}
--- goim_receive
k3 op=1000 seq=0 ver=1 body=back again
--- no_error_log
[alert]
[crit]
