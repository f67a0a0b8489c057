# A worker SIGKILLed in the middle of a reload's hand-off.  gdb holds it
# at the step that matters, so the kill lands there every run:
#  - an old worker, at its first ngx_goim_channel_export(): its clients
#    (nobody else holds their sockets) are closed, reconnect and get
#    pushes; the other old worker's clients move as usual;
#  - a new worker, in ngx_goim_channel_adopt() of a client an old worker
#    sent it: that client is not lost (the old worker still holds it and
#    sends it again, to another new worker), only what the dead worker
#    had started goes with it.
# Afterwards every client gets each push once and the shared tables hold
# exactly the clients that are connected.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Reload;
use Goim::Time;
use HTTP::Tiny;
use JSON::PP;

BEGIN {
    if (system('gdb --version >/dev/null 2>&1') != 0) {
        print "1..0 # SKIP gdb is needed to stop a worker mid-hand-off\n";
        exit 0;
    }
    # a container may forbid ptrace: then gdb cannot attach to anything
    my $pid = fork // die "fork: $!";
    if ($pid == 0) { exec 'sleep', '30'; exit 1 }
    my $out = `gdb -q -nx -batch -p $pid -ex detach 2>&1`;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    if ($out =~ /ptrace|Could not attach|not permitted/i) {
        print "1..0 # SKIP gdb cannot attach to a process here (ptrace refused)\n";
        exit 0;
    }
}

master_on();
workers(2);
Goim::Workers::reuseport();

our $Mid = 6800;

sub status {
    my $res = HTTP::Tiny->new(timeout => Goim::Time::scaled(5))->get(
        'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . '/status');
    return $res->{success} ? decode_json($res->{content}) : {};
}

# clients until each old worker holds at least $min: name => pid
sub spread {
    my ($prefix, $min) = @_;
    my @workers = Goim::Reload::workers();
    my (%owner, %count);
    for my $i (1 .. 40) {
        my $name = "$prefix$i";
        my $mid = ++$main::Mid;
        Goim::Stack::client($name, qq({"mid":$mid,"room_id":"live://68","accepts":[1000]}), 1,
                            $i % 2 ? () : (transport => 'ws'));
        $Goim::Stack::Clients{$name}{mid} = $mid;
        my ($pid) = Goim::Reload::owners($Goim::Stack::Clients{$name}{client});
        $owner{$name} = $pid;
        $count{$pid}++;
        last unless grep { ($count{$_} // 0) < $min } @workers;
    }
    die "the clients did not spread over the workers\n"
        if grep { ($count{$_} // 0) < $min } @workers;
    return %owner;
}

# every connected client of %$names gets a push by mid and one to the room
sub pushes_reach {
    my ($tag, @names) = @_;
    my $mids = join '&', map { "mids=$Goim::Stack::Clients{$_}{mid}" } @names;
    Goim::Stack::push("/goim/push/mids?operation=1000&$mids", "m-$tag") == 1
        or die "push by mid failed\n";
    Goim::Stack::push('/goim/push/room?operation=1000&type=live&room=68', "r-$tag") == 1
        or die "room push failed\n";
    for my $name (@names) {
        my $c = $Goim::Stack::Clients{$name}{client};
        my @got;
        while (@got < 2 && (my $p = $c->read_packet(Goim::Time::scaled(5)))) {
            push @got, $p->{body} if $p->{op} == 1000;
        }
        my $extra = $c->read_packet(0.3);
        Test::More::is(join(' ', sort @got) . ($extra ? " +$extra->{body}" : ''),
                       "m-$tag r-$tag", "$name gets each push once ($tag)");
    }
}

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: an old worker killed as its hand-off begins: its clients reconnect, the others move
--- init
my %owner = main::spread('a', 2);
my ($victim) = sort { $a <=> $b } values %owner;
my @doomed = grep { $owner{$_} == $victim } sort keys %owner;
my @moving = grep { $owner{$_} != $victim } sort keys %owner;

my $gdb = Goim::Reload::stop_at($victim, 'ngx_goim_channel_export');
my %old = map { $_ => 1 } Goim::Reload::workers();
Goim::Reload::hup();
$gdb->wait_hit(20) or die "the old worker never began its hand-off: " . $gdb->log;
$gdb->kill;

# the new generation runs, the old one is gone
Goim::Time::wait_until(sub {
    my @w = Goim::Reload::workers();
    @w == 2 && !grep { $old{$_} } @w;
}, 20) or die "the old workers did not go\n";

for my $name (@doomed) {
    Test::More::ok($Goim::Stack::Clients{$name}{client}->wait_closed(Goim::Time::scaled(5)),
                   "$name (of the killed worker) was closed");
    my $mid = $Goim::Stack::Clients{$name}{mid};
    Goim::Stack::client($name, qq({"mid":$mid,"room_id":"live://68","accepts":[1000]}), 1,
                        $Goim::Stack::Clients{$name}{client}{ws} ? (transport => 'ws') : ());
    $Goim::Stack::Clients{$name}{mid} = $mid;
    Test::More::ok($Goim::Stack::Clients{$name}{auth}, "$name reconnected");
}
my %new = map { $_ => 1 } Goim::Reload::workers();
for my $name (@moving) {
    my $c = $Goim::Stack::Clients{$name}{client};
    Test::More::ok(!$c->eof, "$name (of the other worker) stays connected");
    my @own = Goim::Reload::owners($c);
    Test::More::ok(@own && !grep({ !$new{$_} } @own), "$name is held by a new worker");
}
main::pushes_reach('after-kill', @doomed, @moving);
my $st = main::status();
Test::More::is($st->{connections}{online}, scalar(@doomed) + @moving, 'online: every client, once');
Test::More::is($st->{workers_queue}{keys}, scalar(@doomed) + @moving, 'keys: every client, once');
Test::More::is($st->{handoff}{failed}, 0, 'no hand-off failed');
--- request
GET /status
--- response_body_like chomp
"handoff":\{"handed_off":[1-9]
--- no_error_log eval
[qr/\[alert\](?!.*exited on signal 9)/, qr/\[emerg\]|\[crit\]/]
--- error_log eval
qr/worker process \d+ exited on signal 9/



=== TEST 2: a new worker killed while it adopts a client: the client moves to another one
--- init
my %owner = main::spread('b', 2);
my ($sender) = sort { $a <=> $b } values %owner;
my @sent = grep { $owner{$_} == $sender } sort keys %owner;

# the old worker waits at its first client, until a new worker is held
my $hold = Goim::Reload::stop_at($sender, 'ngx_goim_channel_export');
my %old = map { $_ => 1 } Goim::Reload::workers();
Goim::Reload::hup();
$hold->wait_hit(20) or die "the old worker never began its hand-off: " . $hold->log;
my @new = grep { !$old{$_} } Goim::Reload::workers();
die "no new workers\n" unless @new == 2;

# the sender's clients alternate between the two new workers; the first
# one dies in its first adoption after gdb holds it, before it answers
# for any of the sender's clients
my $victim = $new[0];
my $gdb = Goim::Reload::stop_at($victim, 'ngx_goim_channel_adopt');
$hold->release;
$gdb->wait_hit(20) or die "the new worker never adopted: " . $gdb->log;
$gdb->kill;

Goim::Time::wait_until(sub {
    my @w = Goim::Reload::workers();
    @w == 2 && !grep { $old{$_} || $_ == $victim } @w;
}, 20) or die "the reload did not settle\n";

my %new = map { $_ => 1 } Goim::Reload::workers();
my %sent = map { $_ => 1 } @sent;
my @alive;
for my $name (sort keys %owner) {
    my $c = $Goim::Stack::Clients{$name}{client};
    if (!$sent{$name} && $c->wait_closed(0.5)) {
        # the other old worker's, started in the killed one: gone with it;
        # it reconnects
        my $mid = $Goim::Stack::Clients{$name}{mid};
        Goim::Stack::client($name, qq({"mid":$mid,"room_id":"live://68","accepts":[1000]}), 1,
                            $c->{ws} ? (transport => 'ws') : ());
        $Goim::Stack::Clients{$name}{mid} = $mid;
        Test::More::ok($Goim::Stack::Clients{$name}{auth}, "$name (started in the killed worker) reconnected");
        push @alive, $name;
        next;
    }
    Test::More::ok(!$c->eof, "$name stays connected" . ($sent{$name} ? ' (it was in flight)' : ''));
    my @own = Goim::Reload::owners($c);
    Test::More::ok(@own == 1 && $new{$own[0]}, "$name is held by one live new worker (@own)");
    push @alive, $name;
}
main::pushes_reach('after-adopt-kill', @alive);
my $st = main::status();
Test::More::is($st->{connections}{online}, scalar(@alive), 'online: the live clients, once');
Test::More::is($st->{workers_queue}{keys}, scalar(@alive), 'keys: the live clients, once');
--- request
GET /status
--- response_body_like chomp
"handoff":\{"handed_off":[1-9]
--- no_error_log eval
[qr/\[alert\](?!.*exited on signal 9)/, qr/\[emerg\]|\[crit\]/]
--- error_log eval
[qr/worker process \d+ exited on signal 9/, qr/hand-off link to worker \d+ lost with connections not acknowledged/]
