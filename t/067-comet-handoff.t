# nginx -s reload keeps every plain TCP and WebSocket client: the old
# workers hand their connections (and job's push connection) to the new
# ones.  Across six reloads (a change of worker_processes 2 -> 3 -> 1 -> 2,
# a changed goim_comet_max_accepts, two reloads back to back) while
# pushes by key, mid and room flow: no client is closed, each gets every
# push exactly once and in order, the new workers hold their sockets, the
# new configuration applies to them, job never retries a push.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client qw(:ops pack_packet);
use Goim::Log;
use Goim::Reload;
use Goim::Time;
use File::Temp ();
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);

master_on();
workers(2);

our (@Names, %Got, %Keys, $PushLog, $StopFile);

sub status {
    my $res = HTTP::Tiny->new(timeout => Goim::Time::scaled(5))->get(
        'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status');
    return $res->{success} ? decode_json($res->{content}) : {};
}

# every push a client has received so far: $Got{NAME}{k|m|r} = [n, ...]
sub drain {
    for my $name (@Names) {
        my $c = $Goim::Stack::Clients{$name}{client};
        while (my $p = $c->read_packet(0.001)) {
            next unless $p->{op} == 1000;
            if ($p->{body} =~ /^([kmr])(\d+)$/) {
                push @{$Got{$name}{$1}}, $2;
            } else {
                push @{$Got{$name}{junk}}, $p->{body};
            }
        }
    }
}

# a process that pushes by key, mid and room until told to stop; it logs
# "TYPE N CODE" per call
sub start_pusher {
    my ($keys, $mids) = @_;
    # repeated parameters, as goim's API takes them
    $keys = join '&', map { "keys=$_" } split /,/, $keys;
    $mids = join '&', map { "mids=$_" } split /,/, $mids;
    my $base = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port();
    # not in the server root: the real Test::Nginx removes only what it
    # made there
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    $PushLog = "$dir/pushes.log";
    $StopFile = "$dir/pushes.stop";
    unlink $PushLog, $StopFile;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $log, '>', $PushLog or POSIX::_exit(1);
    $log->autoflush(1);
    my %path = (k => "/goim/push/keys?operation=1000&$keys",
                m => "/goim/push/mids?operation=1000&$mids",
                r => '/goim/push/room?operation=1000&type=live&room=67');
    for (my $n = 1; !-e $StopFile && $n < 100000; $n++) {
        for my $t (qw(k m r)) {
            # a connection per call: a quitting worker closes idle ones
            my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
            my $res = $http->post("$base$path{$t}", {content => "$t$n"});
            my $ok = $res->{success} && $res->{content} =~ /"code":0/;
            print $log "$t $n ", ($ok ? 'ok' : "fail $res->{status}"), "\n";
        }
        sleep 0.01;
    }
    POSIX::_exit(0);
}

sub stop_pusher {
    my $pid = shift;
    open my $fh, '>', $StopFile or die "$StopFile: $!";
    close $fh;
    waitpid $pid, 0;
    my (%sent, @failed);
    open my $log, '<', $PushLog or die "$PushLog: $!";
    while (<$log>) {
        my ($t, $n, $res) = split ' ', $_, 3;
        if ($res =~ /^ok/) { push @{$sent{$t}}, $n } else { push @failed, "$t$n: $res" }
    }
    return (\%sent, \@failed);
}

# true once every client has all of @want of each type
sub complete {
    my $sent = shift;
    for my $name (@Names) {
        for my $t (qw(k m r)) {
            return 0 if @{$Got{$name}{$t} // []} < @{$sent->{$t} // []};
        }
    }
    return 1;
}

sub check_owners {
    my ($when, @pids) = @_;
    my %new = map { $_ => 1 } @pids;
    for my $name (@Names) {
        my @own = Goim::Reload::owners($Goim::Stack::Clients{$name}{client});
        Test::More::ok(@own && !grep({ !$new{$_} } @own),
                       "$when: $name is served by a new worker (@own of @pids)");
    }
}

sub heartbeats {
    my ($when, $seq) = @_;
    for my $name (@Names) {
        my $c = $Goim::Stack::Clients{$name}{client};
        my $hb = $c->heartbeat($seq, Goim::Time::scaled(5));
        Test::More::ok($hb, "$when: $name heartbeat answered");
    }
}

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: nginx -s quit keeps today's shutdown: the clients are closed
--- init
Goim::Stack::client('q', '{"mid":6799,"accepts":[1000]}', 1);
--- request
GET /status
--- response_body_like chomp
"online":1
--- shutdown_error_log
worker is shutting down
--- no_shutdown_error_log
goim comet: reload, handing connections
[alert]
[crit]



=== TEST 2: six reloads while pushes flow: nothing closed, lost, doubled or reordered
--- init
my (@keys, @mids);
for my $i (1 .. 6) {
    my $name = "c$i";
    my $mid = 6700 + $i;
    my $tok = qq({"mid":$mid,"room_id":"live://67","accepts":[1000]});
    Goim::Stack::client($name, $tok, 1, $i % 2 ? () : (transport => 'ws'));
    my $auth = $Goim::Stack::Clients{$name}{auth} or die "$name: no auth reply\n";
    my ($key) = $auth->{body} =~ /"key":"([^"]+)"/ or die "$name: no key\n";
    push @main::Names, $name;
    push @keys, $key;
    push @mids, $mid;
}

# one in its handshake, one half-way through a packet, across the reload
my $late = Goim::Stack::client('late', undef, 0);
my $half = Goim::Stack::client('half', '{"mid":6790,"accepts":[1000]}', 1,
                               transport => 'ws');
my $hb = Goim::Client::ws_frame(2, Goim::Client::pack_packet(1, Goim::Client::OP_HEARTBEAT(), 77, ''));
$half->send_raw(substr($hb, 0, 9));
# and one that will meet the new goim_comet_max_accepts
my $cfg = Goim::Stack::client('cfg', '{"mid":6791,"accepts":[1000]}', 1);

Goim::Reload::while_waiting(\&main::drain);
my $pusher = main::start_pusher(join(',', @keys), join(',', @mids));

# pushes flow before the first reload
Goim::Time::wait_until(sub { main::drain(); @{$main::Got{c1}{r} // []} >= 3 }, 10)
    or die "no push arrived before the reloads\n";

my @pids = Goim::Reload::reload();
main::check_owners('reload 1', @pids);

$late->auth('{"mid":6792,"accepts":[1000]}', 1)
    or die "late: no auth reply after the reload\n";
$half->send_raw(substr($hb, 9));
my $r = $half->wait_for_op(Goim::Client::OP_HEARTBEAT_REPLY(), Goim::Time::scaled(5));
Test::More::is($r && $r->{seq}, 77, 'half: the packet begun before the reload is answered after it');
Test::More::ok((grep { $_ } map { Goim::Reload::owners($_) } $late, $half),
               'late and half: held by the new workers');

Goim::Reload::edit_conf(sub { s/worker_processes\s+\d+;/worker_processes 3;/ });
@pids = Goim::Reload::reload();
main::check_owners('reload 2 (3 workers)', @pids);
main::heartbeats('reload 2', 2);

Goim::Reload::edit_conf(sub { s/worker_processes\s+\d+;/worker_processes 1;/ });
@pids = Goim::Reload::reload();
main::check_owners('reload 3 (1 worker)', @pids);

# the next configuration allows two accepted operations, not 1024
my $ctl = Goim::Stack::client('ctl', '{"mid":6793,"accepts":[1000]}', 1);
$ctl->send_packet(1, Goim::Client::OP_SUB(), 5, '1001,1002');
Test::More::ok($ctl->wait_for_op(Goim::Client::OP_SUB_REPLY(), Goim::Time::scaled(5)),
               'ctl: before the change, a sub to three operations is answered');
Goim::Reload::edit_conf(sub {
    s/worker_processes\s+\d+;/worker_processes 2;/;
    s/(goim_comet;)/$1 goim_comet_max_accepts 2;/;
});
@pids = Goim::Reload::reload();
main::check_owners('reload 4 (2 workers, max_accepts 2)', @pids);
$cfg->send_packet(1, Goim::Client::OP_SUB(), 5, '1001,1002');
Test::More::ok($cfg->wait_closed(Goim::Time::scaled(5)),
               'cfg: after the change, a sub to three operations closes it');

# two reloads back to back: the second while the first hands off
Goim::Reload::hup();
@pids = Goim::Reload::reload();
main::check_owners('reloads 5 and 6 (back to back)', @pids);
main::heartbeats('reload 6', 3);

my ($sent, $failed) = main::stop_pusher($pusher);
Test::More::is("@$failed", '', 'every push call succeeded');
Goim::Time::wait_until(sub { main::drain(); main::complete($sent) }, 20);
sleep 0.5;
main::drain();

for my $name (@main::Names) {
    my $c = $Goim::Stack::Clients{$name}{client};
    Test::More::ok(!$c->eof, "$name: still connected");
    for my $t (qw(k m r)) {
        my $want = join ' ', @{$sent->{$t}};
        my $got = join ' ', @{$main::Got{$name}{$t} // []};
        Test::More::ok($want eq $got, "$name: every push of type $t exactly once, in order ("
                       . scalar(@{$sent->{$t}}) . ' sent, '
                       . scalar(@{$main::Got{$name}{$t} // []}) . ' received)')
            or Test::More::diag("want: $want\n got: $got");
    }
    Test::More::is($main::Got{$name}{junk}, undef, "$name: nothing else");
}

my $st = main::status();
# 9 clients moved 4 times, 10 once; the back-to-back pair moves them once
# or twice
Test::More::ok($st->{handoff}{handed_off} >= 9 * 5 + 1, "handed off: $st->{handoff}{handed_off}");
Test::More::is($st->{handoff}{adopted}, $st->{handoff}{handed_off}, 'adopted: as many');
Test::More::is($st->{handoff}{failed}, 0, 'no hand-off failed');
Test::More::is($st->{handoff}{drained}, 0, 'no client drained');
Test::More::ok($st->{handoff}{sessions_handed_off} >= 5, "job's push connection handed off: $st->{handoff}{sessions_handed_off}");
Test::More::is($st->{connections}{online}, 9, 'online: c1..c6, late, half and ctl');

my $prom = HTTP::Tiny->new->get('http://127.0.0.1:' . Test::Nginx::Socket::server_port()
                                 . '/status?format=prometheus')->{content} // '';
Test::More::like($prom, qr/^goim_comet_handoff_connections_total\{event="handed_off"\} [1-9]/m,
                 'Prometheus: connections handed off');
Test::More::like($prom, qr/^goim_comet_handoff_freeze_us\{quantile="0.99"\} \d+/m,
                 'Prometheus: the freeze p99');

my $job = $Goim::Stack::Job->log;
Test::More::unlike($job, qr/trying again|dropped/, 'job never retried or dropped a push');
--- request
GET /status
--- response_body_like chomp
"handoff":\{"handed_off":\d+
--- no_error_log
[alert]
[crit]
[emerg]
worker is shutting down



=== TEST 3: only a worker of this nginx may hand a connection over
--- init
use Socket qw(AF_UNIX SOCK_SEQPACKET pack_sockaddr_un);
my $master = Goim::Reload::master();
# the workers' listeners, from /proc/net/unix: @goim-comet/MASTER/GEN/N
my $name;
Goim::Time::wait_until(sub {
    open my $fh, '<', '/proc/net/unix' or return 0;
    for (<$fh>) { ($name) = m{\@(goim-comet/$master/\d+/\d+)\s*$} and last }
    return $name;
}, 10) or die "no hand-off listener of master $master\n";
socket(my $s, AF_UNIX, SOCK_SEQPACKET, 0) or die "socket: $!";
connect($s, pack_sockaddr_un("\0$name")) or die "connect \@$name: $!";
send($s, 'x' x 64, 0);
Goim::Log::wait_for(qr/hand-off connection from pid $$ .* refused/, Goim::Time::scaled(10))
    or die "the stranger was not refused\n";
Goim::Stack::client('after', '{"mid":6798,"accepts":[1000]}', 1);
--- request
POST /goim/push/mids?operation=1000&mids=6798
still fine
--- response_body
{"code":0,"message":""}
--- goim_receive
after op=1000 seq=0 ver=1 body=still fine
--- error_log eval
qr/hand-off connection from pid \d+ uid \d+ refused: not a worker of this nginx/
--- no_error_log
[alert]
[crit]
