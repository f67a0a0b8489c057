package Goim::PushRpc;

# Calls to comet's push port (goim_comet_push) as goim-job makes them,
# by hand, for the tests that drive that port themselves: frames as in
# docs/protocol.md, built with Goim::RouterRpc's protobuf writers.
#
#   push_msg($seq, $key, $body)   PushMsg (201): an op-1000 packet to $key
#   broadcast($seq, $body)        Broadcast (202): an op-1000 packet to all
#   connect(rcvbuf => N)          a connection to $TEST_NGINX_PUSH_PORT past
#                                 the handshake (the stack's secret); rcvbuf
#                                 shrinks its receive buffer before connect
#   write_all($s, $bytes)         all of $bytes, or dies
#   read_frames($s, $n, $t)       the next $n frames as [op, seq, body],
#                                 fewer if $s closes or nothing comes for
#                                 $t seconds
#   closed_within($s, $t)         true when the peer closed $s within $t
#                                 seconds (what it sent is discarded)

use strict;
use warnings;

use Goim::RouterRpc;
use IO::Select;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF inet_aton
              pack_sockaddr_in);
use Time::HiRes qw(time);

# the goim packet a push carries (ver 1, op 1000)
sub proto {
    my ($body) = @_;
    return Goim::RouterRpc::f_varint(1, 1) . Goim::RouterRpc::f_varint(2, 1000)
           . Goim::RouterRpc::f_bytes(4, $body);
}

sub push_msg {
    my ($seq, $key, $body) = @_;
    return Goim::RouterRpc::frame(201, $seq,
        Goim::RouterRpc::f_bytes(1, $key) . Goim::RouterRpc::f_bytes(2, proto($body))
        . Goim::RouterRpc::f_varint(3, 1000));
}

sub broadcast {
    my ($seq, $body) = @_;
    return Goim::RouterRpc::frame(202, $seq,
        Goim::RouterRpc::f_varint(1, 1000) . Goim::RouterRpc::f_bytes(2, proto($body)));
}

sub connect {
    my %o = @_;
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, $o{rcvbuf}) or die "setsockopt: $!\n"
        if $o{rcvbuf};
    CORE::connect($s, pack_sockaddr_in($ENV{TEST_NGINX_PUSH_PORT}, inet_aton('127.0.0.1')))
        or die "connect: $!\n";
    binmode $s;
    select((select($s), $| = 1)[0]);
    my $secret = Goim::RouterRpc::secret();
    Goim::RouterRpc::authenticate($s, $secret) if defined $secret;
    return $s;
}

sub write_all {
    my ($s, $bytes) = @_;
    while (length $bytes) {
        my $n = syswrite $s, $bytes;
        die "write: $!\n" unless defined $n;
        substr($bytes, 0, $n, '');
    }
}

sub read_frames {
    my ($s, $n, $timeout) = @_;
    my ($buf, @out) = ('');
    my $sel = IO::Select->new($s);
    while (@out < $n) {
        while (length $buf >= 16) {
            my ($len, undef, undef, $op, $seq) = unpack 'N n n N N', $buf;
            last if length $buf < $len;
            my $f = substr($buf, 0, $len, '');
            push @out, [$op, $seq, substr($f, 16)];
        }
        last if @out >= $n;
        last unless $sel->can_read($timeout);
        my $r = sysread $s, $buf, 1 << 20, length $buf;
        last unless $r;
    }
    return @out;
}

sub closed_within {
    my ($s, $timeout) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + $timeout;
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $r = sysread $s, my $junk, 65536;
        return 1 if !$r;
    }
    return 0;
}

1;
