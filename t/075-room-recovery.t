# Room recovery (not in goim): job gives every room message and broadcast
# a position in its stream (EPOCH:SEQ); a client that asks for positions
# ("recover" in its token) gets them as op 20, and when it comes back
# naming the last one it saw (room_pos, all_pos in the token, or
# "room\nEPOCH:SEQ" in op 12) comet gives it what it missed from its
# history, in order, then op 21 saying whether that was all of it.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client qw(:ops unpack_position);
use Goim::Daemon;
use Goim::Ensure ();
use Goim::Recovery qw(recovering recovery next_positioned room_push all_push);
use Goim::Time;
use Time::HiRes qw(time sleep);

our $Short;

Goim::Stack::setup();
$Goim::Stack::MainConfig =~ s/^(\s*goim_comet_id [^;]*;)/$1
    goim_comet_room_history 5;
    goim_comet_room_history_ttl 1h;/m;
# TEST 8's: the same, but a history of 1 s
($Short = $Goim::Stack::MainConfig) =~ s/goim_comet_room_history_ttl 1h/goim_comet_room_history_ttl 1s/;
Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', $Short) if $block->name =~ /history_ttl/;
});
run_tests();
Goim::Stack::teardown();


sub body_of { Goim::Stack::describe($_[0]{packet}) =~ s/.*body=//r }


__DATA__

=== TEST 1: a client that asks gets room messages as op 20 with their positions; goim's get them plainly
--- init
my $c = Goim::Recovery::recovering('r1', '{"mid":7501,"room_id":"live://7501","recover":true}');
my $r = Goim::Recovery::recovery($c);
Test::More::is($r->{stream}, 'room', 'op 21 after auth: the room stream');
Test::More::is($r->{room}, 'live://7501', 'for its room');
Test::More::ok(!$r->{recovered}, 'nothing was asked to recover');
my $a = Goim::Recovery::recovery($c);
Test::More::is($a->{stream}, 'all', 'then the broadcasts stream');
my $g = Goim::Stack::client('g1', '{"mid":7511,"room_id":"live://7501"}', 1);
Goim::Recovery::room_push('live://7501', "m$_") for 1 .. 2;
my @m = map { Goim::Recovery::next_positioned($c) or die "r1: op 20 #$_ missing\n" } 1 .. 2;
Test::More::is(join(' ', map { main::body_of($_) } @m), 'm1 m2', 'r1: both, as op 20');
Test::More::is($m[0]{stream}, 'room', 'in the room stream');
Test::More::ok($m[0]{epoch} > 0, "an epoch ($m[0]{epoch})");
Test::More::is($m[1]{seq}, $m[0]{seq} + 1, 'seqs one apart');
Test::More::is($m[1]{epoch}, $m[0]{epoch}, 'one epoch');
Test::More::is(Goim::Stack::describe($m[0]{packet}), 'op=1000 seq=0 ver=1 body=m1',
               'the packet inside is the plain one');
my @p = map { $g->read_packet(Goim::Time::scaled(5)) } 1 .. 2;
Test::More::is(join(' ', map { Goim::Stack::describe($_) } @p),
               'op=1000 seq=0 ver=1 body=m1 op=1000 seq=0 ver=1 body=m2',
               'g1 (goim) gets the plain packets, no op 20 or 21');
--- request
GET /status
--- response_body_like chomp
"history":\{"kept":2,



=== TEST 2: offline, then back with room_pos: what was missed, in order, then op 21 recovered
--- init
my $c = Goim::Recovery::recovering('r2', '{"mid":7502,"room_id":"live://7502","recover":true}');
Goim::Recovery::room_push('live://7502', 'before');
my $m = Goim::Recovery::next_positioned($c) or die "r2: no op 20\n";
$c->close;
Goim::Recovery::room_push('live://7502', "missed$_") for 1 .. 3;
my $c2 = Goim::Recovery::recovering('r2b',
    qq({"mid":7502,"room_id":"live://7502","room_pos":"$m->{epoch}:$m->{seq}"}));
my @got = map { Goim::Recovery::next_positioned($c2) or die "r2b: op 20 #$_ missing\n" } 1 .. 3;
Test::More::is(join(' ', map { main::body_of($_) } @got), 'missed1 missed2 missed3',
               'the three missed, in order');
Test::More::is(join(' ', map { $_->{seq} } @got), join(' ', map { $m->{seq} + $_ } 1 .. 3),
               'with the positions after the one named');
my $r = Goim::Recovery::recovery($c2);
Test::More::is($r->{recovered}, JSON::PP::true, 'op 21: recovered');
Test::More::is($r->{missed}, 3, 'three missed');
Test::More::is($r->{pos}, "$m->{epoch}:" . ($m->{seq} + 3), 'and the stream is there now');
Goim::Recovery::room_push('live://7502', 'live');
my $l = Goim::Recovery::next_positioned($c2) or die "r2b: no live op 20\n";
Test::More::is(main::body_of($l) . " $l->{seq}", 'live ' . ($m->{seq} + 4),
               'then live messages go on from there');
--- request
GET /status
--- response_body_like chomp
"recovered":1,"gaps":0,"recovered_msgs":3



=== TEST 3: a gap longer than the history (5 messages): op 21 says not recovered, and sends nothing
--- init
my $c = Goim::Recovery::recovering('r3', '{"mid":7503,"room_id":"live://7503","recover":true}');
Goim::Recovery::room_push('live://7503', 'first');
my $m = Goim::Recovery::next_positioned($c) or die "r3: no op 20\n";
$c->close;
Goim::Recovery::room_push('live://7503', "gone$_") for 1 .. 7;
my $c2 = Goim::Recovery::recovering('r3b',
    qq({"mid":7503,"room_id":"live://7503","room_pos":"$m->{epoch}:$m->{seq}"}));
my $r = Goim::Recovery::recovery($c2);
Test::More::is($r->{recovered}, JSON::PP::false, 'op 21: not recovered, the gap is too old');
Test::More::is($r->{missed}, 0, 'nothing sent');
Test::More::is($r->{pos}, "$m->{epoch}:" . ($m->{seq} + 7), 'the position to go on from');
Test::More::is($c2->wait_for_op(Goim::Client::OP_POSITION(), 0.5), undef, 'no op 20 came before it');
# the last 5 are still there for one that missed fewer
my $c3 = Goim::Recovery::recovering('r3c',
    qq({"mid":7513,"room_id":"live://7503","room_pos":"$m->{epoch}:) . ($m->{seq} + 2) . '"}');
my @got = map { Goim::Recovery::next_positioned($c3) or die "r3c: op 20 #$_ missing\n" } 1 .. 5;
Test::More::is(join(' ', map { main::body_of($_) } @got), 'gone3 gone4 gone5 gone6 gone7',
               'one that saw up to gone2 gets the last five');
Test::More::is(Goim::Recovery::recovery($c3)->{recovered}, JSON::PP::true, 'recovered');
--- request
GET /status
--- response_body_like chomp
"gaps":1,



=== TEST 4: an epoch the stream never had (another job run): not recovered
--- init
my $c = Goim::Recovery::recovering('r4', '{"mid":7504,"room_id":"live://7504","recover":true}');
Goim::Recovery::room_push('live://7504', 'x');
my $m = Goim::Recovery::next_positioned($c) or die "r4: no op 20\n";
my $c2 = Goim::Recovery::recovering('r4b',
    qq({"mid":7514,"room_id":"live://7504","room_pos":"12345:$m->{seq}"}));
my $r = Goim::Recovery::recovery($c2);
Test::More::is($r->{recovered}, JSON::PP::false, 'not recovered');
Test::More::is($r->{pos}, "$m->{epoch}:$m->{seq}", 'told the real position');
--- request
GET /status
--- response_body_like chomp
"gaps":1,



=== TEST 5: broadcasts: their own stream, resumed with all_pos, only the operations accepted
--- init
my $c = Goim::Recovery::recovering('r5', '{"mid":7505,"accepts":[1000],"recover":true}');
Goim::Recovery::all_push('b0');
my $m = Goim::Recovery::next_positioned($c) or die "r5: no op 20\n";
Test::More::is($m->{stream}, 'all', 'a broadcast is in the broadcasts stream');
$c->close;
Goim::Recovery::all_push('b1');
Goim::Recovery::all_push('other', 1001);
Goim::Recovery::all_push('b2');
my $c2 = Goim::Recovery::recovering('r5b',
    qq({"mid":7505,"accepts":[1000],"all_pos":"$m->{epoch}:$m->{seq}"}));
my @got = map { Goim::Recovery::next_positioned($c2) or die "r5b: op 20 #$_ missing\n" } 1 .. 2;
Test::More::is(join(' ', map { main::body_of($_) } @got), 'b1 b2',
               'the missed broadcasts it accepts (not op 1001)');
Test::More::is($got[1]{seq}, $m->{seq} + 3, 'positions count every broadcast');
my $r = Goim::Recovery::recovery($c2);
$r = Goim::Recovery::recovery($c2) if $r->{stream} ne 'all';
Test::More::is("$r->{stream} $r->{recovered} $r->{missed}", 'all 1 2', 'op 21: all recovered, 2');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 6: op 12 "room\nEPOCH:SEQ": back to a room, with what it missed there
--- init
my $c = Goim::Recovery::recovering('r6', '{"mid":7506,"room_id":"live://7506","recover":true}');
Goim::Recovery::recovery($c) for 1 .. 2;     # the auth's: room, all
Goim::Recovery::room_push('live://7506', 'here');
my $m = Goim::Recovery::next_positioned($c) or die "r6: no op 20\n";
$c->send_packet(1, Goim::Client::OP_CHANGE_ROOM(), 5, 'live://7516');
my $reply = $c->wait_for_op(Goim::Client::OP_CHANGE_ROOM_REPLY(), Goim::Time::scaled(5));
Test::More::is($reply && $reply->{body}, 'live://7516', 'op 13 for the other room');
Goim::Recovery::room_push('live://7506', "while$_") for 1 .. 2;
$c->send_packet(1, Goim::Client::OP_CHANGE_ROOM(), 6, "live://7506\n$m->{epoch}:$m->{seq}");
$reply = $c->wait_for_op(Goim::Client::OP_CHANGE_ROOM_REPLY(), Goim::Time::scaled(5));
Test::More::is($reply && $reply->{body}, 'live://7506', 'op 13 echoes the room, not the position');
my @got = map { Goim::Recovery::next_positioned($c) or die "r6: op 20 #$_ missing\n" } 1 .. 2;
Test::More::is(join(' ', map { main::body_of($_) } @got), 'while1 while2',
               'what was pushed there meanwhile');
my $r = Goim::Recovery::recovery($c);
Test::More::is($r && "$r->{room} $r->{recovered} $r->{missed}", 'live://7516 0 0',
               'op 21 for the first change: nothing asked');
$r = Goim::Recovery::recovery($c);
Test::More::is($r && "$r->{room} $r->{recovered} $r->{missed}", 'live://7506 1 2',
               'op 21 for the way back: recovered, 2');
--- request
GET /status
--- response_body_like chomp
"online":



=== TEST 7: a position that is not EPOCH:SEQ: auth refused; in op 12, the connection closed
--- init
my $c = Goim::Stack::client('r7', '{"mid":7507,"room_pos":"yesterday"}', 1);
Test::More::is($Goim::Stack::Clients{r7}{auth}, undef, 'no op 8 for a bad room_pos');
my $d = Goim::Recovery::recovering('r7b', '{"mid":7517,"room_id":"live://7507","recover":true}');
$d->send_packet(1, Goim::Client::OP_CHANGE_ROOM(), 5, "live://7507\n1:x");
Test::More::is($d->wait_for_op(Goim::Client::OP_CHANGE_ROOM_REPLY(), Goim::Time::scaled(5)), undef,
               'no op 13 for a bad position');
# a goim client's op 12 is taken as it is, newline and all
my $g = Goim::Stack::client('g7', '{"mid":7527}', 1);
$g->send_packet(1, Goim::Client::OP_CHANGE_ROOM(), 5, "live://7507\n1:x");
my $reply = $g->wait_for_op(Goim::Client::OP_CHANGE_ROOM_REPLY(), Goim::Time::scaled(5));
Test::More::is($reply && $reply->{body}, "live://7507\n1:x", 'goim clients: op 12 unchanged');
--- request
GET /status
--- response_body_like chomp
"online":
--- goim_closed
r7
r7b
--- error_log
refused: token room_pos is not EPOCH:SEQ
change room: position is not EPOCH:SEQ
--- no_error_log
[alert]
[crit]



=== TEST 8: goim_comet_room_history_ttl: older messages are not served
--- init
my $c = Goim::Recovery::recovering('r8', '{"mid":7508,"room_id":"live://7508","recover":true}');
Goim::Recovery::room_push('live://7508', 'old');
my $m = Goim::Recovery::next_positioned($c) or die "r8: no op 20\n";
$c->close;
Goim::Recovery::room_push('live://7508', 'stale');
my $pushed = time;
sleep 0.1 while time - $pushed < 1.5;
my $c2 = Goim::Recovery::recovering('r8b',
    qq({"mid":7508,"room_id":"live://7508","room_pos":"$m->{epoch}:$m->{seq}"}));
my $r = Goim::Recovery::recovery($c2);
Test::More::is($r->{recovered}, JSON::PP::false, 'older than the history keeps: not recovered');
# the stream had nothing newer than the age bound either: forgotten
Test::More::is($r->{pos}, '', 'nor is its position kept');
Test::More::is($c2->wait_for_op(Goim::Client::OP_POSITION(), 0.5), undef, 'the stale one is not sent');
--- request
GET /status
--- response_body_like chomp
"gaps":1,



=== TEST 9: over WebSocket the op 20 packets come inside the OpRaw frame
--- init
my $c = Goim::Recovery::recovering('w9', '{"mid":7509,"room_id":"live://7509","recover":true}',
                                   transport => 'ws');
Goim::Recovery::room_push('live://7509', 'ws1');
my $m = Goim::Recovery::next_positioned($c) or die "w9: no op 20\n";
Test::More::is(main::body_of($m), 'ws1', 'op 20 holding the message');
Test::More::is(scalar(grep { ($_->{op} // -1) == 9 } @{$c->frames}), 1,
               'in an OpRaw (op 9) frame, as goim sends batches');
$c->close;
Goim::Recovery::room_push('live://7509', 'ws2');
my $c2 = Goim::Recovery::recovering('w9b',
    qq({"mid":7509,"room_id":"live://7509","room_pos":"$m->{epoch}:$m->{seq}"}), transport => 'ws');
my $n = Goim::Recovery::next_positioned($c2) or die "w9b: no op 20\n";
Test::More::is(main::body_of($n), 'ws2', 'recovered over WebSocket too');
--- request
GET /status
--- response_body_like chomp
"recovered":1,



=== TEST 10: job restarted: its streams start new epochs, a position from before is not recovered
--- init
my $c = Goim::Recovery::recovering('r10', '{"mid":7510,"room_id":"live://7510","recover":true}');
Goim::Recovery::room_push('live://7510', 'before');
my $m = Goim::Recovery::next_positioned($c) or die "r10: no op 20\n";
my $port = $Goim::Stack::Job->port;
$Goim::Stack::Job->crash;
$Goim::Stack::Job = Goim::Daemon->start('job', port => $port);
# the new job pushes once it has the comet list
Goim::Time::wait_until(sub { eval { Goim::Recovery::room_push('live://7510', 'after') } }, 20)
    or die "r10: the restarted job takes no push\n";
my $n = Goim::Recovery::next_positioned($c) or die "r10: no op 20 after the restart\n";
Test::More::is(main::body_of($n), 'after', 'the push after the restart');
Test::More::ok($n->{epoch} > $m->{epoch}, 'in a new epoch');
Test::More::is($n->{seq}, 1, 'from 1');
$c->close;
my $c2 = Goim::Recovery::recovering('r10b',
    qq({"mid":7510,"room_id":"live://7510","room_pos":"$m->{epoch}:$m->{seq}"}));
my $r = Goim::Recovery::recovery($c2);
Test::More::is($r->{recovered}, JSON::PP::false, 'a position of the old epoch: not recovered');
Test::More::is($r->{pos}, "$n->{epoch}:1", 'the new position to go on from');
--- request
GET /status
--- response_body_like chomp
"breaks":1,
