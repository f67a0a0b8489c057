# Four workers: a push that reaches one worker (job has one connection to
# one of them) must reach connections held by every worker.  Listeners use
# reuseport so the kernel spreads the TCP clients over the workers.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::RouterRpc;
use Goim::Time;

master_on();
workers(4);

our @Mids = (500 .. 515);

sub clients {
    my ($room) = @_;
    for my $mid (@Mids) {
        Goim::Stack::client("c$mid",
            '{"mid":' . $mid . ',"key":"key-' . $mid . '","room_id":"' . $room
            . '","accepts":[1000]}', 1,
            $mid % 4 == 0 ? (transport => 'ws') : ());
    }
}

sub expect {
    my ($body) = @_;
    join "\n", map { "c$_ op=1000 seq=0 ver=1 body=$body" } @Mids;
}

# the clients really are spread: their auths were logged by several pids
add_response_body_check(sub {
    my ($block) = @_;
    return unless defined $block->goim_workers;
    open my $fh, '<', server_root() . '/logs/error.log' or die $!;
    my %pids;
    while (my $l = <$fh>) { $pids{$1}++ if $l =~ /\[debug\] (\d+)#\d+: \*\d+ goim comet: mid \d+ key/ }
    Test::More::cmp_ok(scalar keys %pids, '>=', 2, $block->name . ' - clients on several workers');
});

# comet's Rooms() (method 204), called as job calls it: the sorted names
sub rooms {
    my ($op, $body) = Goim::RouterRpc::call($ENV{TEST_NGINX_PUSH_PORT}, 204, '');
    return 'no reply' unless defined $op;
    return sprintf('error op %#x', $op) unless $op == (204 | 0x40000000);
    my @names;
    for my $f (Goim::RouterRpc::decode($body)) {
        my %e = map { $_->[0] => $_->[1] } Goim::RouterRpc::decode($f->[1]);
        push @names, "$e{1}=" . ($e{2} // 0);
    }
    return join ' ', sort @names;
}

# --- goim_rooms: what Rooms() answers, "name=1 name=1 ..."
add_response_body_check(sub {
    my ($block) = @_;
    return unless defined $block->goim_rooms;
    (my $want = $block->goim_rooms) =~ s/\s+$//;
    Test::More::is(rooms(), $want, $block->name . ' - Rooms()');
});

Goim::Workers::reuseport();

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: pushes by mid reach clients on every worker
--- init
main::clients('live://60');
--- request
POST /goim/push/mids?operation=1000&mids=500,501,502,503,504,505,506,507,508,509,510,511,512,513,514,515
by mid
--- response_body
{"code":0,"message":""}
--- goim_receive eval
main::expect('by mid')
--- goim_workers: 1



=== TEST 2: pushes by key reach clients on every worker
--- init
main::clients('live://61');
--- request eval
"POST /goim/push/keys?operation=1000&" . join('&', map { "keys=key-$_" } @main::Mids) . "\nby key"
--- response_body
{"code":0,"message":""}
--- goim_receive eval
main::expect('by key')



=== TEST 3: a room push reaches the room on every worker
--- init
main::clients('live://62');
--- request
POST /goim/push/room?operation=1000&type=live&room=62
by room
--- response_body
{"code":0,"message":""}
--- goim_receive eval
main::expect('by room')



=== TEST 4: a broadcast reaches every worker
--- init
main::clients('live://63');
--- request
POST /goim/push/all?operation=1000
to all
--- response_body
{"code":0,"message":""}
--- goim_receive eval
main::expect('to all')



=== TEST 5: a newer connection with the same key kicks the older one in another worker
--- init
for my $i (1 .. 8) {
    Goim::Stack::client("k$i", '{"mid":600,"key":"shared","accepts":[1000]}', 1);
}
# the kicks reach the other workers in their own time: push once they did
$Goim::Stack::Clients{"k$_"}{client}->wait_closed(Goim::Time::scaled(3)) for 1 .. 7;
--- request
POST /goim/push/keys?operation=1000&keys=shared
newest
--- response_body
{"code":0,"message":""}
--- goim_closed
k1
k2
k3
k4
k5
k6
k7
--- goim_receive
k8 op=1000 seq=0 ver=1 body=newest
--- no_error_log
[error]
[alert]



=== TEST 6: the status page adds up every worker and times the hops between them
--- init
main::clients('live://64');
Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=64', 'hop', 20);
# every client got the 20 (so every worker has had its hops) before the status
for my $mid (@main::Mids) {
    my $c = $Goim::Stack::Clients{"c$mid"}{client};
    for my $i (1 .. 20) {
        my $p = $c->read_packet(Goim::Time::scaled(3));
        die "c$mid got " . ($i - 1) . " of the 20 pushes\n" unless $p && $p->{body} eq 'hop';
    }
}
--- request
GET /status
--- response_body_like chomp
"workers":4,"connections":\{"tcp":12,"ws":4,"poll":0,"online":16\}.*"workers_queue":\{"records":[1-9][0-9]*,"queued_bytes":0,"hop_us_p50":[1-9][0-9]*,"hop_us_p99":[1-9][0-9]*,"hop_us_p999":[1-9][0-9]*,"keys":16\}



=== TEST 7: a broadcast with a speed is paced over every worker and reaches everyone
--- init
main::clients('live://65');
--- request
POST /goim/push/all?operation=1000&speed=40
paced
--- response_body
{"code":0,"message":""}
--- goim_receive eval
main::expect('paced')



=== TEST 8: Rooms() lists the rooms of every worker, each once
--- init
for my $mid (@main::Mids) {
    Goim::Stack::client("r$mid",
        '{"mid":' . $mid . ',"key":"room-' . $mid . '","room_id":"live://8'
        . ($mid % 3) . '","accepts":[1000]}', 1);
}
--- request
GET /status
--- response_body_like chomp
"connections":\{"tcp":16,"ws":0,"poll":0,"online":16\},"rooms":3,
--- goim_rooms
live://80=1 live://81=1 live://82=1



=== TEST 9: a room leaves Rooms() with its last member, and a key the shared table with its connection, whichever worker held them
--- init
for my $mid (@main::Mids) {
    Goim::Stack::client("r$mid",
        '{"mid":' . $mid . ',"key":"room-' . $mid . '","room_id":"live://9'
        . ($mid % 3) . '","accepts":[1000]}', 1);
}
for my $mid (grep { $_ % 3 == 1 } @main::Mids) {
    $Goim::Stack::Clients{"r$mid"}{client}->close;
}
# the closes reach their workers in their own time
require HTTP::Tiny;
my $status = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status';
Goim::Time::wait_until(sub { main::rooms() !~ m{live://91}
                             && HTTP::Tiny->new->get($status)->{content} =~ /"online":11\}/ }, 5, 0.1);
--- request
GET /status
--- response_body_like chomp
"online":11\},"rooms":2,.*"keys":11\}
--- goim_rooms
live://90=1 live://92=1



=== TEST 10: a worker killed outright leaves nothing behind: its replacement clears its keys, rooms and counts
--- init
for my $mid (@main::Mids) {
    Goim::Stack::client("d$mid",
        '{"mid":' . $mid . ',"key":"dead-' . $mid . '","room_id":"live://10'
        . ($mid % 2) . '","accepts":[1000]}', 1);
}
# the worker holding the most of them, from their auth lines
open my $fh, '<', Test::Nginx::Socket::server_root() . '/logs/error.log' or die $!;
my %held;
while (my $l = <$fh>) { $held{$1}++ if $l =~ /\[debug\] (\d+)#\d+: \*\d+ goim comet: mid \d+ key "dead-/ }
my ($victim) = sort { $held{$b} <=> $held{$a} } keys %held;
my $left = 16 - $held{$victim};
kill 'KILL', $victim;
require HTTP::Tiny;
my $status = 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status';
Goim::Time::wait_until(sub {
    my $body = HTTP::Tiny->new->get($status)->{content} // '';
    $body =~ /"online":$left\}/ && $body =~ /"keys":$left\}/;
}, 5, 0.1);
--- request
GET /status
--- response_body_like chomp
"workers":4,"connections":\{"tcp":(?!16,)(\d+),"ws":0,"poll":0,"online":\1\},"rooms":2,.*"keys":\1\}
--- goim_rooms
live://100=1 live://101=1
--- error_log
exited on signal 9
--- no_error_log
[error]
[crit]
