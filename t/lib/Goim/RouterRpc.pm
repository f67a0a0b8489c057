package Goim::RouterRpc;

# Hand-made RPC calls to goim-router for tests that need comets other than
# the test nginx: frames as in docs/protocol.md (a 16-byte goim header and
# a protobuf body), the protobuf written field by field.
#
#   Goim::RouterRpc::comet_renew($port, id => 'c1', weight => 10,
#       conn_count => 100, addrs => ['1.1.1.1'], region => 'sh');

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use Goim::Time;

sub varint {
    my $n = shift;
    my $out = '';
    while ($n >= 0x80) { $out .= chr(($n & 0x7f) | 0x80); $n >>= 7 }
    return $out . chr($n);
}

sub f_varint { my ($no, $n) = @_; varint($no << 3) . varint($n) }
sub f_bytes  { my ($no, $s) = @_; varint($no << 3 | 2) . varint(length $s) . $s }

sub frame { my ($op, $seq, $body) = @_;
    pack('N n n N N', 16 + length $body, 16, 1, $op, $seq) . $body }

# one call: the reply's (op, body), or () on EOF or timeout
sub call {
    my ($port, $op, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 3) or die "connect: $!\n";
    print $s frame($op, 1, $body);
    my $buf = '';
    my $sel = IO::Select->new($s);
    while (1) {
        if (length $buf >= 16) {
            my ($len, undef, undef, $rop) = unpack 'N n n N N', $buf;
            return ($rop, substr($buf, 16, $len - 16)) if length $buf >= $len;
        }
        return () unless $sel->can_read(Goim::Time::scaled(3));
        my $n = sysread $s, $buf, 65536, length $buf;
        return () unless $n;
    }
}

# CometRenew (306): registers or refreshes a comet in router's registry
sub comet_renew {
    my ($port, %c) = @_;
    my $info = f_bytes(1, $c{id});
    $info .= f_bytes(2, $c{push_addr} // '127.0.0.1:1');
    $info .= f_bytes(3, $_) for @{$c{addrs} // []};
    $info .= f_varint(6, $c{weight}) if $c{weight};
    $info .= f_bytes(7, $c{region}) if defined $c{region};
    $info .= f_varint(8, 1) if $c{offline};
    $info .= f_varint(9, $c{conn_count}) if $c{conn_count};
    $info .= f_varint(10, $c{ip_count}) if $c{ip_count};
    my ($op) = call($port, 306, f_bytes(1, $info));
    die "CometRenew $c{id}: no reply\n" unless defined $op && $op == (306 | 0x40000000);
    return 1;
}

# a protobuf message as a list of [field number, value] (varints as
# numbers, fixed32 as floats, length-delimited as bytes)
sub decode {
    my $buf = shift;
    my @out;
    my $varint = sub {
        my ($n, $shift) = (0, 0);
        while (1) {
            my $b = ord substr($buf, 0, 1, '');
            $n |= ($b & 0x7f) << $shift;
            $shift += 7;
            return $n unless $b & 0x80;
        }
    };
    while (length $buf) {
        my $key = $varint->();
        my ($no, $type) = ($key >> 3, $key & 7);
        if ($type == 0) { push @out, [$no, $varint->()] }
        elsif ($type == 2) { my $len = $varint->(); push @out, [$no, substr($buf, 0, $len, '')] }
        elsif ($type == 5) { push @out, [$no, unpack('f<', substr($buf, 0, 4, ''))] }
        elsif ($type == 1) { push @out, [$no, unpack('d<', substr($buf, 0, 8, ''))] }
        else { die "protobuf wire type $type\n" }
    }
    return @out;
}

# CometDel (307)
sub comet_del {
    my ($port, $id) = @_;
    my ($op, $body) = call($port, 307, f_bytes(1, $id));
    return defined $body && $body eq "\x08\x01";
}

1;
