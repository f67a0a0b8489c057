# goim-job stops cleanly on SIGTERM whatever state its comet calls are in:
# waiting to try again a comet that refuses connections, in flight to a
# comet that accepted and never answers, or stuck connecting to a comet
# whose listen queue is full.  Each case is a job of its own, stopped with
# SIGTERM by Goim::Daemon->stop, which passes only on exit status 0 and no
# sanitizer report; the log must not hold a libuv assertion either, and
# must show the drain's end.  (The JOB_PUSH caller gets no reply: SIGTERM
# closes job's listener and its connections first, by design.)
#
# The comets are not nginx: router lists them (CometRenew by hand) with a
# push address this file controls, so the comet's behaviour is exact.
use strict;
use warnings;

use Test::More;
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOMAXCONN);
use Time::HiRes qw(sleep time);
use Goim::Daemon;
use Goim::RouterRpc;

# slower under ASan (daemons) and on a loaded machine: deadlines only
my $Scale = $ENV{GOIM_SANITIZE} ? 3 : 1;
my $JobBin = Goim::Daemon::build_dir() . '/goim-job';

# an RPC connection (authenticated when the library knows how)
sub rpc_connect {
    my $port = shift;
    return Goim::RouterRpc::connect($port) if Goim::RouterRpc->can('connect');
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 3)
        or die "connect 127.0.0.1:$port: $!\n";
    return $s;
}

# JOB_PUSH (401) of one PUSH message for key k1 on comet $comet
sub job_push {
    my ($job, $comet) = @_;
    my $msg = Goim::RouterRpc::f_varint(2, 1000)
            . Goim::RouterRpc::f_bytes(4, $comet)
            . Goim::RouterRpc::f_bytes(6, 'k1')
            . Goim::RouterRpc::f_bytes(7, 'hello');
    my $s = rpc_connect($job->port);
    print $s Goim::RouterRpc::frame(401, 7, Goim::RouterRpc::f_bytes(1, $msg));
    return $s;
}

sub job_stats {
    my $job = shift;
    my $addr = $job->addr;
    return { map { /^(\w+)=(-?\d+)$/ ? ($1 => $2) : () }
             split /\n/, qx{$JobBin --stats $addr 2>/dev/null} // '' };
}

# waits until job's counter $name reaches $min; true if it did
sub wait_stat {
    my ($job, $name, $min, $timeout) = @_;
    my $deadline = time + $timeout * $Scale;
    while (time < $deadline) {
        return 1 if (job_stats($job)->{$name} // 0) >= $min;
        sleep 0.05;
    }
    return 0;
}

sub start_job {
    my $name = shift;
    return Goim::Daemon->start('job', name => $name, no_env => 1,
        args => ['--comet-timeout', 1, '--comet-refresh', 1,
                 '--stop-timeout', 5]);
}

# SIGTERM, then what every case checks
sub stop_job {
    my ($t, $job) = @_;
    $job->stop(timeout => 10 * $Scale);      # its own test: exit 0, no report
    my $log = $job->log;
    unlike($log, qr/Assertion .* failed/, "$t - no assertion in job's log");
    like($log, qr/stopped: \d+ records consumed/, "$t - job went through its drain");
}

my $router = Goim::Daemon->start('router', args => ['--comet-ttl', 3600]);
my $Comets = 0;    # registered with router

sub register {
    my ($id, $addr) = @_;
    Goim::RouterRpc::comet_renew($router->port, id => $id, push_addr => $addr);
    $Comets++;
}

# a comet that accepts connections and never answers (as one that is
# SIGSTOPped or wedged): a listener of its own, registered as $id
sub silent_comet {
    my $id = shift;
    my $l = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "listen: $!\n";
    register($id, '127.0.0.1:' . $l->sockport);
    return $l;
}

# the next connection job makes to listener l, or undef; it is kept open
# and never read, so job's calls on it wait for their timeout
sub accept_one {
    my ($l, $timeout) = @_;
    $l->blocking(0);
    my $deadline = time + $timeout * $Scale;
    while (time < $deadline) {
        my $c = $l->accept;
        return $c if $c;
        sleep 0.05;
    }
    return undef;
}

# a comet that refuses connections: a port nothing listens on
register('c-refused', '127.0.0.1:' . Goim::Daemon::free_port());

# a comet whose listen queue is full: new connections hang in SYN_SENT
my $full = IO::Socket::INET->new(Listen => 0, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
    or die "listen: $!\n";
my @fillers;
for (1 .. 8) {
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $full->sockport,
                                  Proto => 'tcp', Blocking => 0);
    push @fillers, $c if $c;
}
register('c-full', '127.0.0.1:' . $full->sockport);


# TEST 1: the delivery waits to try again (retry delay 3 s once it failed
# six times) when SIGTERM comes: the stop gives it up at once, which
# finishes the last record from inside the stop itself
{
    my $t = 'TEST 1 (refused, waiting to retry)';
    my $job = start_job('job-refused');
    my $push = job_push($job, 'c-refused');
    ok(wait_stat($job, 'retries', 6, 15), "$t - the push failed and is retried")
        or diag($job->log_tail(20));
    stop_job($t, $job);
}

# TEST 2: the call is in flight on a connection the comet never answers
{
    my $t = 'TEST 2 (silent, call in flight)';
    my $comet = silent_comet('c-silent');
    my $job = start_job('job-silent');
    my $push = job_push($job, 'c-silent');
    ok(my $conn = accept_one($comet, 5), "$t - job connected to the comet");
    stop_job($t, $job);
}

# TEST 3: the call timed out and was tried again on the same silent
# connection: SIGTERM lands in the retry delay or the next call
{
    my $t = 'TEST 3 (silent, after a timeout)';
    my $comet = silent_comet('c-silent2');
    my $job = start_job('job-silent2');
    my $push = job_push($job, 'c-silent2');
    ok(wait_stat($job, 'retries', 1, 10), "$t - the call timed out and is retried")
        or diag($job->log_tail(20));
    stop_job($t, $job);
}

# TEST 4: the connection is still being made (the comet's queue is full)
{
    my $t = 'TEST 4 (connecting)';
    my $job = start_job('job-connecting');
    my $push = job_push($job, 'c-full');
    my $addr = '127.0.0.1:' . $full->sockport;
    ok($job->wait_for_log(qr/rpc: connecting to \Q$addr\E/, 5 * $Scale),
       "$t - job is connecting to the comet");
    unlike($job->log, qr/rpc: connected to \Q$addr\E/, "$t - and not connected");
    stop_job($t, $job);
}

# TEST 5: SIGTERM with nothing in flight, with comets known
{
    my $t = 'TEST 5 (idle)';
    my $job = start_job('job-idle');
    ok(wait_stat($job, 'comets', $Comets, 5), "$t - job knows the comets");
    stop_job($t, $job);
}

# TEST 6: more signals during the drain (a second SIGTERM, SIGINT, SIGHUP)
# are logged and ignored: they used to find their default action back and
# kill job half-way (status 143, offsets not committed)
{
    my $t = 'TEST 6 (signals during the drain)';
    my $comet = silent_comet('c-silent3');
    my $job = Goim::Daemon->start('job', name => 'job-signals', no_env => 1,
        args => ['--comet-timeout', 5, '--stop-timeout', 8]);
    my $push = job_push($job, 'c-silent3');
    ok(my $conn = accept_one($comet, 5), "$t - a call is in flight");
    kill 'TERM', $job->pid;
    ok($job->wait_for_log(qr/stop: 1 records in flight/, 5 * $Scale), "$t - job is draining");
    for my $sig (qw(TERM INT HUP)) {
        kill $sig, $job->pid;
        ok($job->wait_for_log(qr/\Q${\ {TERM => 'Terminated', INT => 'Interrupt',
                                         HUP => 'Hangup'}->{$sig}}\E while shutting down: ignored/,
                              5 * $Scale),
           "$t - SIG$sig is logged and ignored");
    }
    unlike($job->log, qr/stopped: /, "$t - all of them came during the drain");
    stop_job($t, $job);
}

# TEST 7: a comet moves (router lists another push address for its id)
# while one delivery is in flight to the silent old address and another
# waits for the comet's window: closing the old client fails the first,
# whose callback starts the second, and that one must go to the new
# address (it went to the closed client: "out of memory", failed for good,
# which leaves a Kafka record uncommitted).  Then SIGTERM with both calls
# in flight to a comet that never answers: stop_timeout ends the drain.
{
    my $t = 'TEST 7 (a comet moves, then SIGTERM)';
    my $old = silent_comet('c-move');
    my $new = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1',
                                    LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "listen: $!\n";
    my ($old_addr, $new_addr) = map { '127.0.0.1:' . $_->sockport } $old, $new;

    my $job = Goim::Daemon->start('job', name => 'job-move', no_env => 1,
        args => ['--comet-timeout', 60, '--comet-refresh', 1, '--comet-window', 1,
                 '--stop-timeout', 1]);
    ok(wait_stat($job, 'comets', $Comets, 5), "$t - job knows the comet");

    my $msg = Goim::RouterRpc::f_varint(2, 1000)
            . Goim::RouterRpc::f_bytes(4, 'c-move')
            . Goim::RouterRpc::f_bytes(6, 'k1');
    my $push = rpc_connect($job->port);
    print $push Goim::RouterRpc::frame(401, 8, Goim::RouterRpc::f_bytes(1, $msg)
                                               . Goim::RouterRpc::f_bytes(1, $msg));
    ok(wait_stat($job, 'windowed', 1, 5), "$t - the second delivery waits for the window");
    ok(my $old_conn = accept_one($old, 5), "$t - the first is in flight to the old address");
    my $failed = job_stats($job)->{failed};

    # CometDel and CometRenew in one write: router handles both before it
    # can answer job's next comet list, which sees the comet moved
    my $info = Goim::RouterRpc::f_bytes(1, 'c-move') . Goim::RouterRpc::f_bytes(2, $new_addr);
    my $r = rpc_connect($router->port);
    print $r Goim::RouterRpc::frame(307, 1, Goim::RouterRpc::f_bytes(1, 'c-move'))
           . Goim::RouterRpc::frame(306, 2, Goim::RouterRpc::f_bytes(1, $info));
    ok($job->wait_for_log(qr/comet c-move moved from \Q$old_addr\E to \Q$new_addr\E/, 5 * $Scale),
       "$t - job sees the comet moved");
    ok(wait_stat($job, 'retries', 1, 5), "$t - the call failed on the old client is retried");
    ok(my $new_conn = accept_one($new, 5), "$t - job connects to the new address");
    my $log = $job->log;
    unlike($log, qr/push to comet c-move: out of memory/,
           "$t - the waiting delivery was not sent to the closed client");
    my $st = job_stats($job);
    is($st->{failed} - $failed, 1, "$t - one failed call (the one cut by the move), retried");
    stop_job($t, $job);
    like($job->log, qr/stop: 1 records still in flight after 1 s/,
         "$t - stop_timeout ended the drain");
}

# TEST 8: a push names a comet job does not know, so it waits for a new
# comet list, and router is stopped (SIGSTOP): the fetch times out during
# the drain and the push gives up
{
    my $t = 'TEST 8 (router stopped, a push waiting for the list)';
    my $job = Goim::Daemon->start('job', name => 'job-router-stopped', no_env => 1,
        args => ['--router-timeout', 1, '--comet-refresh', 1, '--stop-timeout', 5]);
    ok(wait_stat($job, 'comets', $Comets, 5), "$t - job has its first comet list");
    kill 'STOP', $router->pid;
    my $push = eval {
        my $p = job_push($job, 'c-nowhere');
        ok(wait_stat($job, 'waiting', 1, 5), "$t - the push waits for a comet list");
        $p;
    };
    stop_job($t, $job);
    kill 'CONT', $router->pid;
    die $@ if $@;
    like($job->log, qr/comet list: .*timed out/, "$t - the fetch timed out");
}

# TEST 9: a comet whose push address is a name that does not resolve
# (RFC 6761's .invalid): each attempt goes through getaddrinfo, fails and
# is tried again; SIGTERM lands in a resolution or in the retry delay
{
    my $t = 'TEST 9 (an unresolvable push address)';
    register('c-dns', 'goim-test.invalid:9');
    my $job = start_job('job-dns');
    my $push = job_push($job, 'c-dns');
    ok(wait_stat($job, 'retries', 2, 10), "$t - the push failed and is retried")
        or diag($job->log_tail(20));
    like($job->log, qr/rpc: goim-test\.invalid:9: resolve goim-test\.invalid: /,
         "$t - the failures are the name's resolution");
    stop_job($t, $job);
}

# the reply to what was written on $s: its op and body, or () on timeout
sub read_reply {
    my ($s, $timeout) = @_;
    my $buf = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + $timeout * $Scale;
    while (time < $deadline) {
        if (length $buf >= 16) {
            my ($len, undef, undef, $op) = unpack 'N n n N', $buf;
            return ($op, substr($buf, 16, $len - 16)) if length $buf >= $len;
        }
        last unless $sel->can_read($deadline - time);
        sysread($s, $buf, 65536, length $buf) or last;
    }
    return ();
}

# TEST 10: a JOB_PUSH is answered once taken, not once delivered: a push
# to a comet that never answers gets its reply at once; past max_inflight
# pushes taken and not finished, the next is refused at once with why
{
    my $t = 'TEST 10 (answered once taken, refused when full)';
    my $comet = silent_comet('c-slow');
    my $job = Goim::Daemon->start('job', name => 'job-full', no_env => 1,
        args => ['--comet-timeout', 60, '--max-inflight', 2, '--stop-timeout', 1]);
    ok(wait_stat($job, 'comets', $Comets, 5), "$t - job knows the comet");
    my @ok;
    for my $i (1 .. 2) {
        my $s = job_push($job, 'c-slow');
        my ($op) = read_reply($s, 3);
        push @ok, $s if defined $op && $op == (401 | 0x40000000);
    }
    is(scalar(@ok), 2, "$t - two pushes answered though the comet never answers");
    ok(accept_one($comet, 5), "$t - and they are on their way to it");
    my $s = job_push($job, 'c-slow');
    my ($op, $body) = read_reply($s, 3);
    is($op, 401 | 0x20000000, "$t - the third is refused at once");
    like($body // '', qr/job is full: 2 pushes in flight \(max_inflight\)/, "$t - saying why");
    is(job_stats($job)->{push_refused}, 1, "$t - counted in push_refused");
    stop_job($t, $job);
}

$router->stop;

done_testing();
