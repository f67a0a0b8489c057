# The zone comet's workers share: a worker killed while it holds a lock
# there must not wedge the others, and what comet reports for all of its
# workers (its connection count) must add every worker up.
use strict;
use warnings;

# valgrind mode runs nginx without a master, so there are no workers
BEGIN {
    if ($ENV{TEST_NGINX_USE_VALGRIND}) {
        print "1..0 # SKIP several workers need a master process, which "
              . "valgrind mode turns off\n";
        exit 0;
    }
}

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::RouterRpc;
use File::Basename ();
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

master_on();
workers(2);

our $Scale = $ENV{GOIM_SANITIZE} ? 10 : 1;
our @Mids = (700 .. 715);
our $Result;

sub errlog {
    open my $fh, '<', server_root() . '/logs/error.log' or return '';
    local $/;
    return <$fh>;
}

# the master's children, from /proc
sub workers_now {
    open my $fh, '<', server_root() . '/logs/nginx.pid' or return ();
    chomp(my $master = <$fh> // '');
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $s, '<', $stat or next;
        my $line = <$s> // '';
        push @w, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $master;
    }
    return sort { $a <=> $b } @w;
}

# the pid of the worker that logged each client's auth
sub owners {
    my ($prefix) = @_;
    my %by;
    my $log = errlog();
    $by{$2} = $1 while $log =~ /\[debug\] (\d+)#\d+: \*\d+ goim comet: mid \d+ key "\Q$prefix\E(\d+)"/g;
    return %by;
}

sub clients {
    my ($prefix) = @_;
    for my $mid (@Mids) {
        Goim::Stack::client("$prefix$mid",
            '{"mid":' . $mid . ',"key":"' . $prefix . $mid
            . '","room_id":"live://23","accepts":[1000]}', 1);
    }
}

# a Broadcast (202) sent straight to the push port on a new connection:
# (its local port, whether it was answered within $timeout)
sub broadcast {
    my ($body, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_PUSH_PORT},
                                  Proto => 'tcp', Timeout => 3) or die "connect: $!\n";
    my $proto = Goim::RouterRpc::f_varint(1, 1) . Goim::RouterRpc::f_varint(2, 1000)
                . Goim::RouterRpc::f_bytes(4, $body);
    print $s Goim::RouterRpc::frame(202, 1, Goim::RouterRpc::f_varint(1, 1000)
                                            . Goim::RouterRpc::f_bytes(2, $proto));
    my ($buf, $sel) = ('', IO::Select->new($s));
    my $deadline = Time::HiRes::time() + $timeout;
    while (1) {
        if (length $buf >= 16) {
            my ($len, undef, undef, $op) = unpack 'N n n N', $buf;
            return ($s->sockport, $op == (202 | 0x40000000)) if length $buf >= $len;
        }
        my $left = $deadline - Time::HiRes::time();
        return ($s->sockport, 0) if $left <= 0 || !$sel->can_read($left);
        return ($s->sockport, 0) unless sysread $s, $buf, 65536, length $buf;
    }
}

# the worker that accepted a connection from local port $port
sub served_by {
    my ($port) = @_;
    return errlog() =~ /(\d+)#\d+: \*\d+ client 127\.0\.0\.1:$port connected/ ? $1 : 0;
}

# the next packet with body $body, within $timeout
sub receives {
    my ($c, $body, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        my $p = $c->read_packet($left) or return 0;
        return 1 if $p->{body} eq $body;
    }
    return 0;
}

# Kills worker $victim with gdb while it holds the lock of another
# worker's queue: a breakpoint just after the append takes the lock, and
# broadcasts on new connections until one lands in $victim (each appends
# to the other worker's queue).
sub kill_in_append {
    my ($victim) = @_;
    my $src = File::Basename::dirname(__FILE__)
              . '/../ngx_goim_comet_module/ngx_goim_comet_shm.c';
    open my $fh, '<', $src or die "$src: $!\n";
    my $line;
    while (<$fh>) { $line = $., last if /^\s+pos = ring->head % ring->size;/ }
    die "no append line in $src\n" unless $line;

    my $log = server_root() . '/logs/gdb.log';
    my $gdb = fork // die "fork: $!\n";
    if ($gdb == 0) {
        open STDOUT, '>', $log or die;
        open STDERR, '>&', \*STDOUT or die;
        exec { "gdb" } "gdb", '-p', $victim, '-batch', '-nx',
             '-ex', 'handle all nostop noprint pass',
             '-ex', "break ngx_goim_comet_shm.c:$line",
             '-ex', 'continue', '-ex', 'print ring->lock', '-ex', 'kill'
            or POSIX::_exit(127);
    }

    my $read = sub { open my $l, '<', $log or return ''; local $/; <$l> // '' };
    for (1 .. 300 * $Scale) {
        last if $read->() =~ /^Breakpoint 1 at/m;
        Time::HiRes::sleep(0.1);
    }
    die "gdb did not attach:\n" . $read->() unless $read->() =~ /^Breakpoint 1 at/m;

    my $hit = sub { $read->() =~ /^\[Inferior 1 \(process $victim\) killed\]/m };
    for my $i (1 .. 40) {
        last if $hit->();
        broadcast("before-$i", 0.5 * $Scale);
    }
    for (1 .. 100 * $Scale) {
        last if waitpid($gdb, POSIX::WNOHANG()) != 0;
        Time::HiRes::sleep(0.1);
    }
    if (!$hit->()) {
        kill 'KILL', $gdb;
        waitpid $gdb, 0;
        die "no broadcast reached worker $victim:\n" . $read->();
    }
    return $read->();
}

# --- goim_result: what the block's --- init left in $main::Result
add_response_body_check(sub {
    my ($block) = @_;
    return unless defined $block->goim_result;
    (my $want = $block->goim_result) =~ s/\s+$//;
    Test::More::is($main::Result, $want, $block->name . ' - result');
});

add_block_preprocessor(sub {
    my $block = shift;
    (my $main = $Goim::Stack::MainConfig) =~ s/(listen 127\.0\.0\.1:\$TEST_NGINX_(?:COMET|PUSH)_PORT)/$1 reuseport/g;
    $main = "goim_comet_online_interval 1s;\n$main";
    $block->set_value('main_config', $main) unless defined $block->main_config;
});

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: a worker killed while it holds another worker's queue lock: its replacement releases it, and broadcasts through the new worker reach the other worker's clients at once
--- init
main::clients('lock-');
my %owner = main::owners('lock-');
my @workers = main::workers_now();
my %held;
$held{$_}++ for values %owner;
die "clients on one worker only\n" unless keys %held == 2 && @workers == 2;
my ($victim, $other) = @workers;
my $gdb = main::kill_in_append($victim);
$main::Result = $gdb =~ /^\$1 = $victim$/m ? 'lock held by the victim'
                                            : "gdb saw:\n$gdb";
# the master starts a replacement at once
my @now;
for (1 .. 100 * $main::Scale) {
    @now = main::workers_now();
    last if @now == 2 && !grep { $_ == $victim } @now;
    Time::HiRes::sleep(0.05);
}
my ($new) = grep { $_ != $other } @now;
my @alive = map { $Goim::Stack::Clients{"lock-$_"}{client} }
            grep { $owner{$_} == $other } @main::Mids;
my $via_new = 0;
for my $i (1 .. 40) {
    my ($port, $ok) = main::broadcast("after-$i", 1 * $main::Scale);
    my $by = main::served_by($port);
    if (!$ok) {
        $main::Result .= ", broadcast $i (worker " . ($by == $new ? 'new' : $by ? 'other' : 'none: not accepted')
                         . ") not answered within 1 s";
        last;
    }
    my $got = grep { main::receives($_, "after-$i", 1 * $main::Scale) } @alive;
    if ($got != @alive) {
        $main::Result .= ", broadcast $i reached $got of " . scalar(@alive);
        last;
    }
    last if $by == $new && ++$via_new == 3;
}
$main::Result .= ", 3 broadcasts through the new worker delivered" if $via_new == 3;
--- request
GET /status
--- response_body_like chomp
"keys":\d+\},"locks_recovered":1,
--- goim_result
lock held by the victim, 3 broadcasts through the new worker delivered
--- error_log
exited on signal 9
died holding the lock of worker
--- no_error_log
[error]
[crit]



=== TEST 2: RenewOnline reports the connections of every worker: /goim/online/total counts them all
--- init
main::clients('sum-');
my %owner = main::owners('sum-');
my %held;
$held{$_}++ for values %owner;
my $n = scalar @main::Mids;
$main::Result = keys %held == 2 ? 'clients on 2 workers' : 'clients on one worker';
# every worker renews each second: wait for a renewal after the auths
require HTTP::Tiny;
my $url = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/goim/online/total';
my $count = -1;
for (1 .. 50 * $main::Scale) {
    ($count) = (HTTP::Tiny->new(timeout => 3)->get($url)->{content} // '') =~ /"conn_count":(\d+)/;
    last if defined $count && $count == $n;
    Time::HiRes::sleep(0.1);
}
$main::Result .= ", conn_count " . ($count // 'missing');
--- request
GET /status
--- response_body_like chomp
"workers":2,"connections":\{"tcp":16,"ws":0,"online":16\}
--- goim_result
clients on 2 workers, conn_count 16
