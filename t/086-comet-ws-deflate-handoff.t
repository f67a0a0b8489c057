# permessage-deflate across nginx -s reload: the negotiation travels with
# a handed-off WebSocket channel (a flag of its record), so a kept client
# still gets compressed frames and may still send them, and a compressed
# message begun before the reload is inflated after it.  A reload that
# turns goim_comet_ws_deflate off sends the kept clients plain frames (a
# negotiated connection may carry both) and still inflates theirs.
use strict;
use warnings;

use Goim::Workers;
use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Client;
use Goim::Reload;
use Goim::Time;
use HTTP::Tiny;

master_on();
workers(2);

our $Big = '{"type":"chat","room":"live://78","text":"'
    . join(' ', map { "word$_ of a long enough message" } 1 .. 20) . '"}';

$Goim::Stack::Config =~ s/(location = \/sub \{\n\s*goim_comet_ws;\n)/$1        goim_comet_ws_deflate on;\n/
    or die "no /sub location to add goim_comet_ws_deflate to\n";

sub push_big {
    my $res = HTTP::Tiny->new(timeout => Goim::Time::scaled(5))->post(
        'http://127.0.0.1:' . Test::Nginx::Socket::server_port()
        . '/goim/push/mids?operation=1000&mids=780&mids=781', {content => $Big});
    die "push failed: $res->{status}\n" unless $res->{success};
}

# the next push a client gets, and whether its frame was compressed
sub next_push {
    my ($c) = @_;
    my $p = $c->wait_for_op(1000, Goim::Time::scaled(5)) or return ('none', undef);
    # the last data frame: the push (by mid, an op-9 batch around it)
    my ($frame) = grep { $_->{opcode} == 2 } reverse @{$c->frames};
    return ($p->{body} eq $Big ? 'big' : "other: $p->{body}", $frame && $frame->{rsv1});
}

sub check_owners {
    my ($when, @pids) = @_;
    my %new = map { $_ => 1 } @pids;
    for my $name (qw(dz pl half)) {
        my @own = Goim::Reload::owners($Goim::Stack::Clients{$name}{client});
        Test::More::ok(@own && !grep({ !$new{$_} } @own),
                       "$when: $name is served by a new worker (@own of @pids)");
    }
}

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: two reloads: the deflate flag stays with each kept client, a half-sent compressed message is inflated after the reload
--- init
my $dz = Goim::Stack::client('dz', '{"mid":780,"accepts":[1000]}', 1, transport => 'ws', deflate => 1);
my $pl = Goim::Stack::client('pl', '{"mid":781,"accepts":[1000]}', 1, transport => 'ws');
my $half = Goim::Stack::client('half', '{"mid":782,"accepts":[1000]}', 1, transport => 'ws', deflate => 1);
die "no deflate negotiated\n" unless $dz->deflate && $half->deflate;

main::push_big();
Test::More::is(join(' ', map { $_ // 0 } main::next_push($dz)), 'big 1', 'before: dz gets a compressed frame');
Test::More::is(join(' ', map { $_ // 0 } main::next_push($pl)), 'big 0', 'before: pl gets a plain frame');

# the first fragment of a compressed heartbeat before the reload
my $hb = Goim::Client::deflate_message(Goim::Client::pack_packet(1, Goim::Client::OP_HEARTBEAT(), 41, ''));
$half->send_raw(Goim::Client::ws_frame(2, substr($hb, 0, 2), rsv => 1, fin => 0));

my @pids = Goim::Reload::reload();
main::check_owners('reload 1', @pids);

$half->send_raw(Goim::Client::ws_frame(0, substr($hb, 2), fin => 1));
my $r = $half->wait_for_op(Goim::Client::OP_HEARTBEAT_REPLY(), Goim::Time::scaled(5));
Test::More::is($r && $r->{seq}, 41, 'half: the compressed message begun before the reload is inflated after it');

$dz->send_raw(Goim::Client::ws_frame(2, Goim::Client::deflate_message(Goim::Client::pack_packet(1, Goim::Client::OP_HEARTBEAT(), 42, '')), rsv => 1));
$r = $dz->wait_for_op(Goim::Client::OP_HEARTBEAT_REPLY(), Goim::Time::scaled(5));
Test::More::is($r && $r->{seq}, 42, 'reload 1: dz may still send compressed frames');

main::push_big();
Test::More::is(join(' ', map { $_ // 0 } main::next_push($dz)), 'big 1', 'reload 1: dz still gets compressed frames');
Test::More::is(join(' ', map { $_ // 0 } main::next_push($pl)), 'big 0', 'reload 1: pl still gets plain frames');

# the new configuration turns compression off
Goim::Reload::edit_conf(sub { s/^\s*goim_comet_ws_deflate on;\n//m or die "no directive\n" });
@pids = Goim::Reload::reload();
main::check_owners('reload 2 (deflate off)', @pids);

main::push_big();
Test::More::is(join(' ', map { $_ // 0 } main::next_push($dz)), 'big 0', 'reload 2: dz gets plain frames');

$dz->send_raw(Goim::Client::ws_frame(2, Goim::Client::deflate_message(Goim::Client::pack_packet(1, Goim::Client::OP_HEARTBEAT(), 43, '')), rsv => 1));
$r = $dz->wait_for_op(Goim::Client::OP_HEARTBEAT_REPLY(), Goim::Time::scaled(5));
Test::More::is($r && $r->{seq}, 43, 'reload 2: what dz negotiated still inflates');
--- request
GET /status
--- response_body_like chomp
"handoff":\{"handed_off":[1-9]\d*,"adopted":[1-9]\d*,"drained":0,"failed":0,
--- no_error_log
[error]
[alert]
[crit]
