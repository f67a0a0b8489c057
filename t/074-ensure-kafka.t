# Ensure messages with Kafka between logic and job: logic produces the
# ENSURE, ONLINE and ACK records to the push topic (keyed by the mid),
# goim-job keeps an index of it (its mailboxes), commits no offset past a
# message still pending and writes a Receipt record to the receipts topic
# when one is finished.  An ensure push reaches an acknowledging client
# and its receipt is served over HTTP and written as a record; a message
# pushed while its mid is offline survives a SIGKILL of job (the new job
# rebuilds it from the topic, same seq); and while ensure pushes flow,
# job, router, a comet worker and the Kafka broker are all killed or
# restarted: every message is acknowledged by its client exactly once
# after deduplication, and every receipt ends delivered.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Cli;
use Goim::Client qw(:ops unpack_ensure);
use Goim::Daemon;
use Goim::Ensure qw(http ensure_push receipts wait_receipt acking next_ensure job_stats);
use Goim::Kafka;
use Goim::Reload;
use Goim::Stack;
use Goim::Time;
use POSIX ();
use Time::HiRes qw(time sleep);

our $Kafka = Goim::Kafka->start(partitions => 4);
our $Receipts = 'goim-receipts-topic';
system(Goim::Kafka::script(), 'topic', $Kafka->dir, $Receipts, 2) == 0
    or die "cannot create topic $Receipts\n";

# resends every second, never given up for retries: the chaos of TEST 3
# costs sends, not messages
our @JobArgs = ('--kafka-brokers', $Kafka->brokers, '--kafka-topic', $Kafka->topic,
                '--kafka-group', "job-074-$$", '--kafka-receipts-topic', $Receipts,
                '--ensure-retry', 1000, '--ensure-retries', 10000, '--comet-refresh', 1);

master_on();
workers(2);
Goim::Workers::reuseport();
Goim::Cli::setup();
Goim::Stack::setup(job_args => \@JobArgs);
# records to Kafka, receipt queries to job's RPC; comet registers every
# 2 s and renews its sessions on the heartbeats of every second (goim-cli
# -H 2), so that a restarted router knows them again soon: a mid with
# nothing pending has no session in job
$Goim::Stack::MainConfig =~ s{goim_logic_job ([^;]*);}
    {goim_logic_queue kafka=\$TEST_NGINX_KAFKA_BROKERS topic=\$TEST_NGINX_KAFKA_TOPIC job=$1;};
$Goim::Stack::MainConfig =~ s{^(\s*goim_comet_id [^;]*;)}
    {$1\n    goim_comet_online_interval 2s;\n    goim_comet_renew_interval 1s;}m;

sub varint {
    my ($buf, $pos) = @_;
    my ($v, $shift) = (0, 0);
    while (1) {
        my $b = ord substr($$buf, $$pos++, 1);
        $v |= ($b & 0x7f) << $shift;
        last unless $b & 0x80;
        $shift += 7;
    }
    return $v;
}

# the Receipt records of the receipts topic, decoded by field number
# (goim.proto): ({key, mid, state, ...}, ...); none when the topic could
# not be read to its end
sub receipt_records {
    my $bin = Goim::Daemon::build_dir() . '/unit/kafka_dump';
    my @lines = `$bin @{[$Kafka->brokers]} $Receipts all`;
    return () if $?;
    my @names = (undef, qw(mid state key time_ms reason seq attempts created_ms id));
    my @recs;
    for (@lines) {
        next unless /key=(\S*) value=([0-9a-f]*)/;
        my %r = (kkey => $1, mid => 0, state => 0, seq => 0, attempts => 0,
                 id => '', reason => '');
        my $buf = pack 'H*', $2;
        my $pos = 0;
        while ($pos < length $buf) {
            my $tag = varint(\$buf, \$pos);
            my $name = $names[$tag >> 3] // 'unknown';
            if (($tag & 7) == 0) {
                $r{$name} = varint(\$buf, \$pos);
            } else {
                my $len = varint(\$buf, \$pos);
                $r{$name} = substr($buf, $pos, $len);
                $pos += $len;
            }
        }
        push @recs, \%r;
    }
    return @recs;
}

# the worker holding most of the connections to comet's TCP port
sub busiest_worker {
    my %inodes;
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $file or next;
        while (my $line = <$fh>) {
            my @f = split ' ', $line;
            next unless @f > 9 && $f[1] =~ /:([0-9A-F]{4})$/ && hex($1) == $ENV{TEST_NGINX_COMET_PORT};
            $inodes{$f[9]} = 1 if $f[3] eq '01' && $f[9];
        }
    }
    my ($best, $most) = (undef, -1);
    for my $pid (Goim::Reload::workers()) {
        my $n = grep { my $to = readlink($_) // ''; $to =~ /^socket:\[(\d+)\]$/ && $inodes{$1} }
                glob "/proc/$pid/fd/*";
        ($best, $most) = ($pid, $n) if $n > $most;
    }
    return ($best, $most);
}

sub restart_job {
    my $port = $Goim::Stack::Job->port;
    $Goim::Stack::Job->crash;                          # SIGKILL
    $Goim::Stack::Job = Goim::Daemon->start('job', name => "job-$_[0]",
        port => $port, args => \@main::JobArgs);
}

run_tests();
Goim::Stack::teardown();
$Kafka->finish;

__DATA__

=== TEST 1: an ensure push through Kafka reaches an acknowledging client; its receipt over HTTP and as a record
--- init
my $c = Goim::Ensure::acking('a1', '{"mid":7401,"key":"k7401","accepts":[1000]}');
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7401&ensure=1', 'via kafka');
# the first record waits for job to join its group
my $e = Goim::Ensure::next_ensure($c, 20) or die "a1: no op 19\n";
Test::More::is($e->{id}, $id, 'op 19 carries the id');
Test::More::is(Goim::Stack::describe($e->{packet}), 'op=1000 seq=0 ver=1 body=via kafka', 'and the push');
Test::More::cmp_ok($e->{seq}, '>=', 2**52, "its seq is its position in the topic ($e->{seq})");
Test::More::is(Goim::Ensure::receipts($id)->[0]{state}, 'pending', 'pending until acknowledged');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, $id);
my $got = Goim::Ensure::wait_receipt($id, 7401, 'delivered', 10);
Test::More::ok($got, 'delivered once acknowledged (the ACK record went through Kafka)');
Test::More::is($got && $got->{key}, 'k7401', 'by the key that acked');
Test::More::is($got && $got->{seq}, $e->{seq}, 'with its seq');
my $rec;
Goim::Time::wait_until(sub { ($rec) = grep { $_->{id} eq $id } main::receipt_records(); $rec }, 10);
Test::More::ok($rec, 'a Receipt record on the receipts topic');
Test::More::is($rec && "$rec->{kkey} $rec->{key} $rec->{mid} $rec->{state} $rec->{seq}", "$id k7401 7401 1 $e->{seq}",
               'keyed by the id: mid, state DELIVERED, seq');
Test::More::is($rec && $rec->{attempts}, $got && $got->{attempts}, 'its sends, as job counted them');
# a resend (every second here) may have crossed the ack: nothing after it
while (my $p = $c->read_packet(Goim::Time::scaled(1))) { }
Test::More::is($c->read_packet(1.5), undef, 'nothing resent after the ack');
--- request
GET /status
--- response_body_like chomp
"online":
--- timeout: 60



=== TEST 2: pushed while the mid is offline, job SIGKILLed and restarted: delivered on connect, same seq
--- init
my @ids = map { Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7402&ensure=1', "off$_") } 1 .. 3;
my @seqs = map { my $r = Goim::Ensure::wait_receipt($_, 7402, 'pending', 15); $r ? $r->{seq} : -1 } @ids;
Test::More::ok(!(grep { $_ < 0 } @seqs), 'job holds the three');
main::restart_job('b');
# the new job has its partitions once the dead member's session is over
Test::More::ok(Goim::Ensure::wait_receipt($ids[2], 7402, 'pending', 30),
               'the restarted job rebuilt them from the topic');
Test::More::is(Goim::Ensure::receipts($ids[0])->[0]{seq}, $seqs[0], 'with the same seq');
my $c = Goim::Ensure::acking('b1', '{"mid":7402,"accepts":[1000]}');
my @got = map { Goim::Ensure::next_ensure($c, 10) or die "b1: op 19 #$_ missing\n" } 1 .. 3;
Test::More::is(join(' ', map { $_->{id} } @got), "@ids", 'all three, in order');
Test::More::is(join(' ', map { $_->{seq} } @got), "@seqs", 'with the seqs they had before the SIGKILL');
Test::More::is(join(' ', map { Goim::Stack::describe($_->{packet}) =~ s/.*body=//r } @got),
               'off1 off2 off3', 'and their messages');
$c->send_packet(1, Goim::Client::OP_ACK(), 0, join(',', @ids));
Test::More::ok(Goim::Ensure::wait_receipt($_, 7402, 'delivered', 10), "$_ delivered") for @ids;
--- request
GET /status
--- response_body_like chomp
"online":
--- timeout: 90



=== TEST 3: job, router, a comet worker and the broker killed or restarted while ensure pushes flow: each acknowledged exactly once
--- init
my $n = 300;
my @mids = (7410 .. 7413);
my $cli = Goim::Cli::start('chaos', ['-p', '--print-ensure', '--reconnect', '-n', scalar(@mids),
                                     '-m', $mids[0], '-H', 2, '-a', 1000], auth => scalar(@mids));
my $out = Test::Nginx::Socket::server_root() . '/../ensure-kafka-ids.txt';
unlink $out;
# the pusher, 10 a second; a push not accepted (the broker or router is
# away, a worker died) is tried again: the ids, one line per push
my $child = fork // die "fork: $!";
if ($child == 0) {
    open my $fh, '>', $out or POSIX::_exit(1);
    $fh->autoflush(1);
    my $t0 = time;
    for my $i (1 .. $n) {
        sleep 0.01 while time < $t0 + $i * 0.1;
        my $mid = $mids[$i % @mids];
        my $deadline = time + Goim::Time::scaled(60);
        my ($id, $tries) = (undef, 0);
        while (!defined $id && time < $deadline) {
            $tries++;
            $id = eval { Goim::Ensure::ensure_push("/goim/push/mids?operation=1000&mids=$mid&ensure=1", "c$i") };
            sleep 0.2 unless defined $id;
        }
        print $fh "$i $mid ", $id // 'FAILED', " $tries\n";
    }
    close $fh;
    POSIX::_exit(0);
}
my $pushed = sub { open my $fh, '<', $out or return 0; my @l = <$fh>; scalar @l };
my $at = sub { my $k = shift; Goim::Time::wait_until(sub { $pushed->() >= $k }, 60) };
$at->(40);
main::restart_job('c');
Test::More::note('job SIGKILLed and restarted at push ' . $pushed->());
$at->(90);
my $rport = $Goim::Stack::Router->port;
$Goim::Stack::Router->crash;
$Goim::Stack::Router = Goim::Daemon->start('router', port => $rport);
Test::More::note('router SIGKILLed and restarted at push ' . $pushed->());
$at->(150);
my ($worker, $conns) = main::busiest_worker();
kill 'KILL', $worker;
Test::More::note("comet worker $worker ($conns clients) SIGKILLed at push " . $pushed->());
$at->(200);
$main::Kafka->stop;
$main::Kafka->start_again;
Test::More::note('Kafka broker restarted at push ' . $pushed->());
waitpid $child, 0;
open my $fh, '<', $out or die "$out: $!";
my @pushes = map { [split ' '] } <$fh>;
close $fh;
unlink $out;
Test::More::is(scalar(@pushes), $n, "$n pushes");
Test::More::is(scalar(grep { $_->[2] eq 'FAILED' } @pushes), 0, 'every push was accepted in the end');
my %want = map { $_->[2] => $_ } @pushes;
# op 19s as goim-cli printed them: first copies (dup=0) and resends
my (%first, %body, $dups);
my $scan = sub {
    %first = ();
    $dups = 0;
    for (split /\n/, Goim::Cli::slurp($cli->{out})) {
        next unless /ensure id=(\S+) seq=\d+ op=\d+ dup=([01]) body=(.*)$/;
        if ($2 == 0) { $first{$1}++; $body{$1} = $3 } else { $dups++ }
    }
    !grep { !$first{$_} } keys %want;
};
Goim::Time::wait_until($scan, 60);
my @missing = grep { !$first{$_} } sort keys %want;
Test::More::is(scalar(@missing), 0, "every message reached its client (missing: @missing[0 .. ($#missing > 9 ? 9 : $#missing)])");
my @twice = grep { $first{$_} > 1 } keys %first;
Test::More::is(scalar(@twice), 0, 'none twice after deduplication');
Test::More::is(scalar(grep { $body{$_->[2]} && $body{$_->[2]} ne "c$_->[0]" } @pushes), 0,
               'each with its own message');
my @extra = grep { !$want{$_} } keys %first;
my $retried = grep { $_->[3] > 1 } @pushes;
Test::More::note(scalar(@pushes) . " messages ($retried pushes tried again: answered 503 or cut), "
                 . ($dups // 0) . ' resends dropped by the client, '
                 . scalar(@extra) . ' messages of pushes not answered 200');
Goim::Time::wait_until(sub { (Goim::Ensure::job_stats()->{ensure_pending} // -1) == 0 }, 30);
my $st = Goim::Ensure::job_stats();
Test::More::is($st->{ensure_pending}, 0, 'nothing pending in job');
Test::More::is(scalar(grep { $_->{state} eq 'pending' } map { @{Goim::Ensure::receipts($_)} } keys %want), 0,
               'no receipt pending over HTTP');
my %delivered;
Goim::Time::wait_until(sub {
    %delivered = map { $_->{state} == 1 ? ($_->{id} => 1) : () } main::receipt_records();
    !grep { !$delivered{$_} } keys %want;
}, 30);
my @undelivered = grep { !$delivered{$_} } keys %want;
Test::More::is(scalar(@undelivered), 0, 'every message has a DELIVERED record on the receipts topic');
--- request
GET /status
--- response_body_like chomp
"online":
--- timeout: 200
--- no_error_log
[emerg]



=== TEST 4: past ensure_mailbox_max the records wait in the topic, not in job, and are read again once there is room: all arrive, once, in order
--- init
$Goim::Stack::Job->stop;
$Goim::Stack::Job = Goim::Daemon->start('job', name => 'job-d', port => $Goim::Stack::Job->port,
                                        args => [@main::JobArgs, '--ensure-mailbox-max', 4]);
my @ids = map { Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7420&ensure=1', "d$_") } 1 .. 12;
Goim::Time::wait_until(sub { (Goim::Ensure::job_stats()->{ensure_deferred} // 0) >= 8 }, 30);
my $st = Goim::Ensure::job_stats();
Test::More::is($st->{ensure_pending}, 4, 'job holds ensure_mailbox_max of them');
Test::More::cmp_ok($st->{ensure_deferred}, '>=', 8, 'the others are deferred');
my $c = Goim::Ensure::acking('d1', '{"mid":7420,"accepts":[1000]}');
my (@got, %seen);
my $deadline = time + Goim::Time::scaled(30);
while (@got < 12 && time < $deadline) {
    my $e = Goim::Ensure::next_ensure($c, 1) or next;
    $c->send_packet(1, Goim::Client::OP_ACK(), 0, $e->{id});
    push @got, $e unless $seen{$e->{id}}++;
}
Test::More::is(join(' ', map { $_->{id} } @got), "@ids", 'all twelve, once each, in order');
Test::More::ok(!(grep { $got[$_]{seq} <= $got[$_ - 1]{seq} } 1 .. $#got), 'seqs increase');
Goim::Time::wait_until(sub { (Goim::Ensure::job_stats()->{ensure_pending} // -1) == 0 }, 20);
$st = Goim::Ensure::job_stats();
Test::More::cmp_ok($st->{ensure_replays}, '>=', 1, 'the partition was read again');
Test::More::is($st->{ensure_pending}, 0, 'nothing pending');
--- request
GET /status
--- response_body_like chomp
"online":
--- timeout: 60



=== TEST 5: with kafka= alone an ensure push still goes (to Kafka); receipts need job=
--- main_config eval
(my $m = $Goim::Stack::MainConfig) =~ s/ job=[^;]*;/;/;
$m
--- init
my $id = Goim::Ensure::ensure_push('/goim/push/mids?operation=1000&mids=7430&ensure=1', 'no job rpc');
Test::More::ok($id, 'the push answers an id');
--- request
GET /goim/push/receipts?id=x
--- error_code: 503
--- response_body
{"code":-500,"message":"receipts need goim-job's RPC (goim_logic_queue job=..., with or without kafka=)"}
