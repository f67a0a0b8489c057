package Goim::Recovery;

# Helpers for the room recovery tests (t/075, t/073): clients that ask for
# positions, the op 20 messages and op 21 answers they get, room pushes.
#
#   my $c = recovering('name', '{"mid":1,"room_id":"live://1","recover":true}');
#   my $r = recovery($c);                  # op 21, decoded: {stream, pos, ...}
#   my $m = next_positioned($c);           # {stream, epoch, seq, packet}
#   room_push('live://1', 'body');         # POST /goim/push/room, checked

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;
use Goim::Client qw(OP_POSITION OP_RECOVERY unpack_position);
use Goim::Ensure ();
use Goim::Stack;
use Goim::Time;

our @EXPORT_OK = qw(recovering recovery next_positioned room_push all_push);

sub recovering {
    my ($name, $token, %opts) = @_;
    my $c = Goim::Stack::client($name, $token, 1, %opts);
    die "$name: no auth reply\n" unless $Goim::Stack::Clients{$name}{auth};
    return $c;
}

# the next op 21 the client gets, decoded; undef after timeout
sub recovery {
    my ($c, $timeout) = @_;
    my $p = $c->wait_for_op(OP_RECOVERY, Goim::Time::scaled($timeout // 5))
        or return undef;
    return decode_json($p->{body});
}

sub next_positioned {
    my ($c, $timeout) = @_;
    my $p = $c->wait_for_op(OP_POSITION, Goim::Time::scaled($timeout // 5))
        or return undef;
    return unpack_position($p->{body});
}

# "live://1000" -> type=live&room=1000; dies unless logic took it
sub room_push {
    my ($room, $body, $op) = @_;
    my ($type, $id) = $room =~ m{^([^:]+)://(.*)$} or die "room $room: not TYPE://ID\n";
    my ($status, $json) = Goim::Ensure::http('POST',
        "/goim/push/room?operation=" . ($op // 1000) . "&type=$type&room=$id", $body);
    die "room push $room: $status " . encode_json($json) . "\n" unless $status == 200;
    return 1;
}

sub all_push {
    my ($body, $op) = @_;
    my ($status, $json) = Goim::Ensure::http('POST', "/goim/push/all?operation=" . ($op // 1000),
                                             $body);
    die "broadcast: $status " . encode_json($json) . "\n" unless $status == 200;
    return 1;
}

1;
