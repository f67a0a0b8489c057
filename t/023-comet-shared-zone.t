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
our ($Result, $Blocks);

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
    my ($prefix, $room) = @_;
    for my $mid (@Mids) {
        Goim::Stack::client("$prefix$mid",
            '{"mid":' . $mid . ',"key":"' . $prefix . $mid
            . '","room_id":"' . ($room // 'live://23') . '","accepts":[1000]}', 1);
    }
}

# a Broadcast (202) sent straight to the push port on a new connection:
# (its local port, whether it was answered within $timeout)
sub broadcast {
    my ($body, $timeout) = @_;
    # the handshake first (the stack's RPC secret); a worker that cannot
    # answer it has not answered the broadcast either
    my $s = eval { Goim::RouterRpc::connect($ENV{TEST_NGINX_PUSH_PORT}) };
    return (0, 0) unless $s;
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

# the rooms comet's Rooms() (204) lists, sorted, as job calls it
sub rooms {
    my ($op, $body) = Goim::RouterRpc::call($ENV{TEST_NGINX_PUSH_PORT}, 204, '');
    return 'no reply' unless defined $op && $op == (204 | 0x40000000);
    my @names;
    for my $f (Goim::RouterRpc::decode($body)) {
        my %e = map { $_->[0] => $_->[1] } Goim::RouterRpc::decode($f->[1]);
        push @names, $e{1};
    }
    return join ' ', sort @names;
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

# gdb attached to worker $victim, running @cmds (a breakpoint first), its
# log; dies unless it attached
sub gdb_start {
    my ($victim, @cmds) = @_;
    my $log = server_root() . '/logs/gdb.log';
    unlink $log;
    my $gdb = fork // die "fork: $!\n";
    if ($gdb == 0) {
        open STDOUT, '>', $log or die;
        open STDERR, '>&', \*STDOUT or die;
        exec { "gdb" } "gdb", '-p', $victim, '-batch', '-nx',
             '-ex', 'handle all nostop noprint pass',
             map { ('-ex', $_) } @cmds
            or POSIX::_exit(127);
    }
    my $read = sub { open my $l, '<', $log or return ''; local $/; <$l> // '' };
    for (1 .. 300 * $Scale) {
        last if $read->() =~ /^Breakpoint 1 at/m;
        Time::HiRes::sleep(0.1);
    }
    die "gdb did not attach:\n" . $read->() unless $read->() =~ /^Breakpoint 1 at/m;
    return ($gdb, $read);
}

# runs $poke (a new connection each time) until gdb's log matches $re
# (by default: it killed $victim), then waits for gdb to exit
sub gdb_wait_kill {
    my ($gdb, $read, $victim, $poke, $re) = @_;
    $re //= qr/^\[Inferior 1 \(process $victim\) killed\]/m;
    my $hit = sub { $read->() =~ $re };
    for my $i (1 .. 40) {
        last if $hit->();
        $poke->($i);
    }
    for (1 .. 100 * $Scale) {
        last if waitpid($gdb, POSIX::WNOHANG()) != 0;
        Time::HiRes::sleep(0.1);
    }
    if (!$hit->()) {
        kill 'KILL', $gdb;
        waitpid $gdb, 0;
        die "nothing reached worker $victim:\n" . $read->();
    }
    return $read->();
}

# the line of ngx_goim_comet_module/$file that matches $re
sub src_line {
    my ($file, $re) = @_;
    my $src = File::Basename::dirname(__FILE__)
              . "/../ngx_goim_comet_module/$file";
    open my $fh, '<', $src or die "$src: $!\n";
    while (<$fh>) { return $. if /$re/ }
    die "no line $re in $src\n";
}

# the master replaced $victim: the new worker's pid
sub replacement {
    my ($victim, $other) = @_;
    my @now;
    for (1 .. 100 * $Scale) {
        @now = workers_now();
        last if @now == 2 && !grep { $_ == $victim } @now;
        Time::HiRes::sleep(0.05);
    }
    my ($new) = grep { $_ != $other && $_ != $victim } @now;
    return $new // 0;
}

# Kills worker $victim with gdb while it holds the lock of another
# worker's queue: a breakpoint just after the append takes the lock, and
# broadcasts on new connections until one lands in $victim (each appends
# to the other worker's queue).
sub kill_in_append {
    my ($victim) = @_;
    my $line = src_line('ngx_goim_comet_zone.c',
                        qr/^\s+pos = ring->head % ring->size;/);
    my ($gdb, $read) = gdb_start($victim, "break ngx_goim_comet_zone.c:$line",
                                 'continue', 'print ring->lock', 'kill');
    return gdb_wait_kill($gdb, $read, $victim,
                         sub { broadcast("before-$_[0]", 0.5 * $Scale) });
}

# Kills worker $victim with gdb in the middle of adding a key to the
# shared table: the node is linked into the tree, its children not yet
# set (ngx_str_rbtree_insert_value() stores the parent link between the
# two).  New clients connect until one lands in $victim.
sub kill_in_key_insert {
    my ($victim) = @_;
    my $line = src_line('ngx_goim_comet_tables.c',
                        qr/^\s+ngx_rbtree_insert\(&ngx_goim_comet_sh\(wk\)->keys, &k->node\.node\);/);
    my ($gdb, $read) = gdb_start($victim, "break ngx_goim_comet_tables.c:$line",
                                 'continue', 'delete',
                                 'break ngx_str_rbtree_insert_value', 'continue',
                                 'delete', 'watch -l *(long *) ($rsi + 24)',
                                 'continue', 'kill');
    my @late;
    my $log = gdb_wait_kill($gdb, $read, $victim, sub {
        my $mid = 800 + $_[0];
        # one landing in $victim gets no answer: EOF once gdb killed it
        my $c = Goim::Client->new('127.0.0.1', $ENV{TEST_NGINX_COMET_PORT}, 5);
        my $auth = $c->auth('{"mid":' . $mid . ',"key":"late-' . $mid
                            . '","accepts":[1000]}', 1, 5 * $Scale);
        push @late, [$mid, $c] if $auth;
    });
    return ($log, @late);
}

# Leaves the pid of a process that is gone in the lock of $victim's queue,
# as if its owner had died there and no worker replaced it (a worker of an
# old generation after a reload is not replaced): gdb stops $other when it
# drains its queue (a broadcast that reached $victim) and writes the lock.
sub plant_dead_owner {
    my ($other, $victim) = @_;
    my $dead = fork // die "fork: $!\n";
    POSIX::_exit(0) if $dead == 0;
    waitpid $dead, 0;
    my ($gdb, $read) = gdb_start($other, 'break ngx_goim_comet_relay_drain', 'continue',
        "set var ((ngx_goim_comet_shctx_t *) wk->sh)->rings[1 - wk->worker].lock = $dead",
        'print ((ngx_goim_comet_shctx_t *) wk->sh)->rings[1 - wk->worker].lock',
        'delete', 'detach');
    my $log = gdb_wait_kill($gdb, $read, $other,
                            sub { broadcast("plant-$_[0]", 0.5 * $Scale) },
                            qr/^\[Inferior 1 \(process $other\) detached\]/m);
    return ($dead, $log);
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
    # a fresh nginx for every block: a block's killed worker stays killed
    $main = "# block " . ++$main::Blocks . "\ngoim_comet_online_interval 1s;\n$main";
    # the real Test::Nginx runs the preprocessors last added first, so
    # Goim::Stack's default may be there already
    $block->set_value('main_config', $main)
        unless defined $block->main_config
               && $block->main_config ne $Goim::Stack::MainConfig;
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
my $new = main::replacement($victim, $other);
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



=== TEST 2: RenewOnline reports the connections of every worker: /goim/online/total counts them all, and a room's count all its members
--- init
main::clients('sum-', 'live://24');
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
GET /goim/online/room?type=live&rooms=24
--- response_body
{"code":0,"message":"","data":{"24":16}}
--- goim_result
clients on 2 workers, conn_count 16



=== TEST 3: a worker killed in the middle of adding a key to the shared table: the tables are rebuilt from what every worker holds, and pushes by key reach every client left
--- init
main::clients('tab-');
my %owner = main::owners('tab-');
my @workers = main::workers_now();
my %held;
$held{$_}++ for values %owner;
die "clients on one worker only\n" unless keys %held == 2 && @workers == 2;
my ($victim, $other) = @workers;
my ($gdb, @late) = main::kill_in_key_insert($victim);
$main::Result = $gdb =~ /^Hardware watchpoint \d+: -location|^Watchpoint \d+: -location/m
                ? 'killed inside the insert' : "gdb saw:\n$gdb";
my $new = main::replacement($victim, $other);
my @alive = ((map { ["tab-$_", $Goim::Stack::Clients{"tab-$_"}{client}] }
              grep { $owner{$_} == $other } @main::Mids),
             map { ["late-$_->[0]", $_->[1]] } @late);
$main::Result .= $new ? ', replaced' : ', not replaced';
# the other worker adds its keys back when the record reaches it
require HTTP::Tiny;
my $status = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status';
my $keys = -1;
for (1 .. 50 * $main::Scale) {
    ($keys) = (HTTP::Tiny->new(timeout => 3)->get($status)->{content} // '') =~ /"keys":(\d+)/;
    last if defined $keys && $keys == @alive;
    Time::HiRes::sleep(0.1);
}
$main::Result .= ($keys // -1) == @alive ? ', every key back' : ", $keys keys of " . scalar(@alive);
$main::Result .= ', Rooms() ' . main::rooms();
Goim::Stack::push('/goim/push/keys?operation=1000&' . join('&', map { "keys=$_->[0]" } @alive),
                  'after rebuild');
# job may have to reconnect first: its connection may have been the dead worker's
my $got = grep { main::receives($_->[1], 'after rebuild', 5 * $main::Scale) } @alive;
$main::Result .= $got == @alive ? ', pushes by key delivered' : ", $got of " . scalar(@alive) . ' got the push';
--- request
GET /status
--- response_body_like chomp
"locks_recovered":1,
--- goim_result
killed inside the insert, replaced, every key back, Rooms() live://23, pushes by key delivered
--- error_log
exited on signal 9
died holding the lock of the shared key and room tables
--- no_error_log
[error]
[crit]



=== TEST 4: a queue lock whose owner is gone and was not replaced: the first worker that waits for it takes it over
--- init
main::clients('own-');
my %owner = main::owners('own-');
my @workers = main::workers_now();
my %held;
$held{$_}++ for values %owner;
die "clients on one worker only\n" unless keys %held == 2 && @workers == 2;
my ($victim, $other) = @workers;
my ($dead, $gdb) = main::plant_dead_owner($other, $victim);
$main::Result = $gdb =~ /^\$1 = $dead$/m ? 'lock planted' : "gdb saw:\n$gdb";
# $other's broadcasts append to $victim's queue: the first one meets the lock
my @clients = map { $Goim::Stack::Clients{"own-$_"}{client} }
              grep { $owner{$_} == $victim } @main::Mids;
my $via_other = 0;
for my $i (1 .. 40) {
    my ($port, $ok) = main::broadcast("owned-$i", 1 * $main::Scale);
    my $by = main::served_by($port);
    if (!$ok) {
        $main::Result .= ", broadcast $i (worker " . ($by == $other ? 'other' : $by ? 'victim' : 'none')
                         . ") not answered within 1 s";
        last;
    }
    my $got = grep { main::receives($_, "owned-$i", 1 * $main::Scale) } @clients;
    if ($got != @clients) {
        $main::Result .= ", broadcast $i reached $got of " . scalar(@clients);
        last;
    }
    last if $by == $other && ++$via_other == 3;
}
$main::Result .= ", 3 broadcasts through the waiting worker delivered" if $via_other == 3;
$main::Result .= main::errlog() =~ /process $dead died holding the lock of worker \d+'s queue/
                 ? ', taken over' : ', not logged';
--- request
GET /status
--- response_body_like chomp
"locks_recovered":1,
--- goim_result
lock planted, 3 broadcasts through the waiting worker delivered, taken over
--- no_error_log
[error]
[crit]
[alert]
