# goim-job's room batches grow with a room's rate: a quiet room's message
# leaves at once, whatever room_wait is; messages that come while a
# fan-out is in flight leave together, and make the room busy: its next
# batch waits up to room_wait for company.  Pushes are answered once job
# has taken them, so a burst of pushes is not held to the fan-out's pace.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client qw(:ops);
use Goim::Ensure ();
use Goim::Recovery ();
use Goim::Time;
use IO::Socket::INET;

# 10 s: a message that waited for it would time the reads out
Goim::Stack::setup(job_args => ['--room-wait', 10000, '--room-batch', 50]);
# TEST 3's 600 members
worker_connections(2048);
run_tests();
Goim::Stack::teardown();

sub bodies { join ' ', map { $_ ? $_->{body} : 'none' } @_ }

__DATA__

=== TEST 1: a quiet room: each message leaves at once, alone
--- init
my $c = Goim::Stack::client('q1', '{"mid":7601,"room_id":"live://7601"}', 1);
$c->heartbeat(2);
my $before = Goim::Ensure::job_stats()->{room_batches};
Goim::Recovery::room_push('live://7601', 'one');
my $p1 = $c->read_packet(Goim::Time::scaled(5));
Goim::Recovery::room_push('live://7601', 'two');
my $p2 = $c->read_packet(Goim::Time::scaled(5));
Test::More::is(main::bodies($p1, $p2), 'one two', 'both arrive, neither waits for room_wait');
Test::More::is(Goim::Ensure::job_stats()->{room_batches} - $before, 2, 'one batch each');
--- request
GET /status
--- response_body_like chomp
"online":1



=== TEST 2: a burst: what came during a fan-out leaves together, then the busy room waits for company
--- init
my $c = Goim::Stack::client('b1', '{"mid":7602,"room_id":"live://7602"}', 1);
my $before = Goim::Ensure::job_stats()->{room_batches};
# 30 pushes at once, on connections of their own, then their answers
my @socks = map {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', Proto => 'tcp',
                                  PeerPort => Test::Nginx::Socket::server_port())
        or die "connect: $!\n";
    $s;
} 1 .. 30;
for my $i (1 .. 30) {
    my $b = "m$i";
    syswrite $socks[$i - 1], "POST /goim/push/room?operation=1000&type=live&room=7602 HTTP/1.0\r\n"
        . "Content-Length: " . length($b) . "\r\n\r\n$b";
}
my $answered = grep { local $/; my $a = readline($_) // ''; $a =~ m{^HTTP/1\.\d 200} } @socks;
Test::More::is($answered, 30, 'all 30 answered 200 (taken)');
my @got;
# on a loaded machine some pushes may come after the second batch left: the
# room is busy by then, and their batch waits for room_wait (10 s)
while (@got < 30 and my $p = $c->read_packet(Goim::Time::scaled(20))) {
    push @got, $p;
}
Test::More::is(main::bodies(@got), join(' ', map { "m$_" } 1 .. 30), 'all 30, in order');
my $batches = Goim::Ensure::job_stats()->{room_batches} - $before;
Test::More::ok($batches < 30, "in fewer batches: those that came during a fan-out went together ($batches)");
# that made the room busy: the next message waits for company (room_wait)
Goim::Recovery::room_push('live://7602', 'later');
Test::More::is($c->read_packet(2), undef, 'a busy room: the next message waits for company');
my $l = $c->read_packet(Goim::Time::scaled(20));
Test::More::is(main::bodies($l), 'later', 'and leaves once room_wait has passed');
# it went alone: the room is quiet again
Goim::Recovery::room_push('live://7602', 'quiet');
Test::More::is(main::bodies($c->read_packet(Goim::Time::scaled(5))), 'quiet',
               'alone, it made the room quiet: the next leaves at once');
--- request
GET /status
--- response_body_like chomp
"online":1



=== TEST 3: a fan-out past 256 writes goes out in slices, one turn of the event loop each, and reaches every member once
--- init
my $n = 600;
my @cs = map { Goim::Stack::client("s$_", qq({"mid":${\ (7700 + $_)},"room_id":"live://7603"}), 1) } 1 .. $n;
my (undef, $st) = Goim::Ensure::http('GET', '/status');
my $before = $st->{messages}{write_slices};
Goim::Recovery::room_push('live://7603', 'sliced');
my $got = grep { my $p = $_->read_packet(Goim::Time::scaled(10)); $p && $p->{body} eq 'sliced' } @cs;
Test::More::is($got, $n, "all $n members have it");
Test::More::is(scalar(grep { defined $_->read_packet(0.2) } @cs[0 .. 9]), 0, 'once');
(undef, $st) = Goim::Ensure::http('GET', '/status');
# 600 writes at 256 a turn: two turns left for the next
Test::More::cmp_ok($st->{messages}{write_slices} - $before, '>=', 2,
                   'the writes were cut into slices (write_slices on the status page)');
$_->close for @cs;
--- request
GET /status
--- response_body_like chomp
"write_slices":\d+
