# Ensure messages on a comet of two workers: acknowledging clients and
# goim's clients on either worker each get what they should (the ack
# filter crosses the workers' rings); a client offline for 5 s while 1,000
# ensure messages and 1,000 room messages are pushed gets every one,
# exactly once and in order, when it reconnects (the room's from comet's
# history, t/075); a comet worker killed with SIGKILL while ensure
# pushes flow loses none of them: every one is acknowledged exactly once
# after the client drops the duplicates.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client qw(:ops unpack_ensure unpack_position);
use Goim::Recovery ();
use Goim::Ensure qw(http ensure_push receipts wait_receipt acking next_ensure job_stats);
use Goim::Reload;
use Goim::Time;
use POSIX ();
use Time::HiRes qw(time sleep);

master_on();
workers(2);
Goim::Workers::reuseport();
# a loaded machine may take longer than 10 resends (the default limit) to
# read and acknowledge the tail of TEST 2's 1,000: the limit is not what
# this file checks (t/072 does)
Goim::Stack::setup(job_args => ['--ensure-retry', 1000, '--ensure-retries', 1000,
                                '--ensure-mailbox-max', 2000]);
$Goim::Stack::MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1\n    goim_comet_room_history 2000;/m;
run_tests();
Goim::Stack::teardown();

# every op 19 c has until timeout passes without one: [{seq, id, packet}],
# acknowledged as they come (one op 18 per batch read)
sub take_all {
    my ($c, $want, $timeout) = @_;
    return @{(take_mixed($c, $want, 0, $timeout))[0]};
}

# take_all, keeping the room messages (op 20) too: ([ensure], [room])
sub take_mixed {
    my ($c, $want, $want_room, $timeout) = @_;
    my (@got, @room);
    my $deadline = time + Goim::Time::scaled($timeout);
    while ((@got < $want || @room < $want_room) && time < $deadline) {
        my @ids;
        while (my $p = $c->read_packet(@ids ? 0.01 : 0.5)) {
            if ($p->{op} == OP_POSITION) {
                push @room, unpack_position($p->{body});
                next;
            }
            next unless $p->{op} == OP_ENSURE;
            my $e = unpack_ensure($p->{body});
            push @got, $e;
            push @ids, $e->{id};
            last if @ids >= 100;
        }
        $c->send_packet(1, OP_ACK, 0, join(',', @ids)) if @ids;
    }
    return (\@got, \@room);
}

# what a client that drops duplicates keeps: the first of each id
sub dedupe {
    my %seen;
    return grep { !$seen{$_->{id}}++ } @_;
}

__DATA__

=== TEST 1: on either worker, op 19 to the connections that acknowledge, the plain packet to the others
--- init
my (@ack, @goim);
for my $i (1 .. 4) {
    push @ack, Goim::Ensure::acking("a$i", qq({"mid":73${i}0,"accepts":[1000]}),
                                    $i % 2 ? () : (transport => 'ws'));
    push @goim, Goim::Stack::client("g$i", qq({"mid":73${i}0,"accepts":[1000]}), 1);
}
Test::More::ok(scalar(keys %{{map { $_ => 1 } map { Goim::Reload::owners($_) } @ack, @goim}}) == 2,
               'the clients are on both workers');
for my $i (1 .. 4) {
    my $id = Goim::Ensure::ensure_push("/goim/push/mids?operation=1000&mids=73${i}0&ensure=1", "to $i");
    my $e = Goim::Ensure::next_ensure($ack[$i - 1]) or die "a$i: no op 19\n";
    Test::More::is("$e->{id} " . Goim::Stack::describe($e->{packet}), "$id op=1000 seq=0 ver=1 body=to $i",
                   "a$i: op 19");
    Test::More::is(Goim::Stack::describe($goim[$i - 1]->read_packet(Goim::Time::scaled(5))),
                   "op=1000 seq=0 ver=1 body=to $i", "g$i: the plain packet");
    $ack[$i - 1]->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
    Test::More::ok(Goim::Ensure::wait_receipt($id, "73${i}0", 'delivered'), "to $i: delivered");
}
Test::More::is($_->read_packet(0.5), undef, 'no goim client got a second copy') for @goim;
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 2: offline for 5 s while 1,000 ensure and 1,000 room messages are pushed: all of them, once, in order, on reconnect
--- init
my $c = Goim::Ensure::acking('off', '{"mid":7399,"room_id":"live://7399","accepts":[1000],"recover":true}');
Goim::Recovery::room_push('live://7399', 'r0');
my $last = Goim::Recovery::next_positioned($c) or die "off: no op 20\n";
$c->close;
my $closed = time;
my @ids;
for my $i (1 .. 1000) {
    push @ids, Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7399&ensure=1', "n$i");
    Goim::Recovery::room_push('live://7399', "r$i");
}
# offline for 5 s at least, however long the pushes took
sleep 0.1 while time - $closed < 5;
# and until both workers hold every room message: job batches a busy room
# for room_wait, and on a loaded machine the last batch could come after
# the reconnect, live instead of recovered
Goim::Time::wait_until(sub {
    my (undef, $st) = Goim::Ensure::http('GET', '/status');
    ($st->{history}{kept} // 0) >= 2 * 1001;
}, 20) or die "the room messages did not all reach comet\n";
my $before = Goim::Ensure::job_stats();
Test::More::is($before->{ensure_pending} >= 1000 ? 1000 : $before->{ensure_pending}, 1000,
               'job holds the 1,000 while the mid is offline');
my $c2 = Goim::Ensure::acking('on', '{"mid":7399,"room_id":"live://7399","accepts":[1000],'
                              . qq("room_pos":"$last->{epoch}:$last->{seq}"}));
my ($e, $room) = main::take_mixed($c2, 1000, 1000, 60);
my @got = main::dedupe(@$e);
Test::More::is(scalar(@got), 1000, 'every ensure message arrives');
Test::More::ok(join(' ', map { $_->{id} } @got) eq "@ids", 'once each, in the order pushed');
Test::More::ok(join(' ', map { Goim::Stack::describe($_->{packet}) =~ s/.*body=//r } @got)
               eq join(' ', map { "n$_" } 1 .. 1000), 'with their messages');
Test::More::is(scalar(@$room), 1000, 'every room message arrives, none twice');
Test::More::ok(join(' ', map { Goim::Stack::describe($_->{packet}) =~ s/.*body=//r } @$room)
               eq join(' ', map { "r$_" } 1 .. 1000), 'in the order pushed');
Test::More::ok(join(' ', map { $_->{seq} } @$room)
               eq join(' ', map { $last->{seq} + $_ } 1 .. 1000), 'at the positions after the last seen');
Goim::Time::wait_until(sub { Goim::Ensure::job_stats()->{ensure_pending} == 0 }, 20);
my $after = Goim::Ensure::job_stats();
Test::More::is($after->{ensure_pending}, 0, 'nothing pending once acknowledged');
Test::More::is($after->{ensure_acked} - $before->{ensure_acked}, 1000, 'each acknowledged once');
Test::More::is($after->{ensure_expired_ttl} + $after->{ensure_expired_retries}, 0, 'none expired');
--- request
GET /status
--- response_body_like chomp
"recovered":1,"gaps":0,"recovered_msgs":1000
--- timeout: 90



=== TEST 3: a comet worker killed while ensure pushes flow loses none of them
--- init
my $c = Goim::Ensure::acking('k1', '{"mid":7398,"accepts":[1000]}');
my ($pid) = Goim::Reload::owners($c) or die "k1: no owner\n";
my $before = Goim::Ensure::job_stats();
my $n = 300;
# a pusher in a child process: the ids, one per line
my $out = Test::Nginx::Socket::server_root() . '/../ensure-ids.txt';
my $child = fork // die "fork: $!";
if ($child == 0) {
    open my $fh, '>', $out or POSIX::_exit(1);
    $fh->autoflush(1);
    for my $i (1 .. $n) {
        # the push whose call the killed worker was serving loses its
        # answer (job may have taken it): a caller tries again
        my $id;
        for (1 .. 3) {
            $id = eval { Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7398&ensure=1', "p$i") };
            last if defined $id;
        }
        print $fh (defined $id ? $id : 'FAILED'), "\n";
    }
    close $fh;
    POSIX::_exit(0);
}
my @got = main::take_all($c, 50, 10);
kill 'KILL', $pid;
$c->wait_closed(Goim::Time::scaled(5));
waitpid $child, 0;
my $c2 = Goim::Ensure::acking('k2', '{"mid":7398,"accepts":[1000]}');
open my $fh, '<', $out or die "$out: $!";
chomp(my @ids = <$fh>);
close $fh;
unlink $out;
Test::More::is(scalar(grep { /^FAILED/ } @ids), 0, 'every push was accepted');
push @got, main::take_all($c2, $n, 30);
my @kept = main::dedupe(@got);
my %arrived = map { $_->{id} => 1 } @kept;
Test::More::is(scalar(grep { $arrived{$_} } @ids), $n, "all $n answered pushes arrive ("
               . scalar(@got) . ' with the duplicates)')
    or Test::More::diag('missing: ' . join(' ', map { my $id = $_;
        "$id " . JSON::PP::encode_json(Goim::Ensure::receipts($id)) } grep { !$arrived{$_} } @ids)
        . ' job: ' . JSON::PP::encode_json(Goim::Ensure::job_stats()));
my %bodies = map { (Goim::Stack::describe($_->{packet}) =~ s/.*body=//r) => 1 } @kept;
Test::More::is(scalar(grep { $bodies{"p$_"} } 1 .. $n), $n, 'every message pushed is among them');
# one more at most: a push taken by job whose answer died with the worker
Test::More::cmp_ok(scalar(@kept), '<=', $n + 1, 'and nothing else (' . scalar(@kept) . ')');
Goim::Time::wait_until(sub { Goim::Ensure::job_stats()->{ensure_pending} == 0 }, 20);
my $after = Goim::Ensure::job_stats();
Test::More::is($after->{ensure_acked} - $before->{ensure_acked}, scalar(@kept),
               'each acknowledged exactly once');
Test::More::is($after->{ensure_pending}, 0, 'nothing pending');
--- request
GET /status
--- response_body_like chomp
"online":
--- timeout: 60
--- no_error_log
[emerg]



=== TEST 4: across nginx -s reload a connection that acknowledges still gets op 19
--- init
my $c = Goim::Ensure::acking('h1', '{"mid":7397,"accepts":[1000]}');
$c->heartbeat(2) or die "h1: no heartbeat reply\n";
my @pids = Goim::Reload::reload();
Test::More::ok((grep { my $o = $_; grep { $_ == $o } @pids } Goim::Reload::owners($c)),
               'h1 is held by a new worker');
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7397&ensure=1', 'after reload');
my $p = $c->read_packet(Goim::Time::scaled(5));
Test::More::is($p && $p->{op}, Goim::Client::OP_ENSURE(), 'op 19, not the plain packet');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
Test::More::ok(Goim::Ensure::wait_receipt($id, 7397, 'delivered'), 'delivered');
--- request
GET /status
--- response_body_like chomp
"online":
--- no_error_log
[emerg]
