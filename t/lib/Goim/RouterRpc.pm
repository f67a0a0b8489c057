package Goim::RouterRpc;

# Hand-made RPC calls to goim-router for tests that need comets other than
# the test nginx: frames as in docs/protocol.md (a 16-byte goim header and
# a protobuf body), the protobuf written field by field.
#
#   Goim::RouterRpc::comet_renew($port, id => 'c1', weight => 10,
#       conn_count => 100, addrs => ['1.1.1.1'], region => 'sh');
#
# Connections authenticate first (docs/protocol.md, "Authentication")
# with the secret in $ENV{GOIM_RPC_SECRET_FILE}, when it is set:
#   my $s = Goim::RouterRpc::connect($port);        # ready for frames
#   my $s = Goim::RouterRpc::connect($port, secret_file => '');  # none
#   authenticate($s, $secret) dies with the reason when the peer refuses.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use IO::Socket::INET;
use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

use constant {
    AUTH_HELLO     => 0x10000001,
    AUTH_CHALLENGE => 0x10000002,
    AUTH_PROOF     => 0x10000003,
};
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

# the secret of a file as the daemons and nginx read it (undef: none)
sub secret {
    my $file = @_ ? shift : $ENV{GOIM_RPC_SECRET_FILE};
    return undef unless defined $file && length $file;
    open my $fh, '<', $file or die "RouterRpc: $file: $!\n";
    local $/;
    my $s = <$fh>;
    $s =~ s/[\r\n]+\z//;
    return $s;
}

# exactly n bytes from s within timeout seconds, or undef (EOF, timeout)
sub read_exact {
    my ($s, $n, $timeout) = @_;
    my $buf = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + ($timeout // Goim::Time::scaled(3));
    while (length $buf < $n) {
        my $left = $deadline - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $got = sysread $s, $buf, $n - length $buf, length $buf;
        return undef unless $got;
    }
    return $buf;
}

sub nonce {
    open my $r, '<', '/dev/urandom' or die "RouterRpc: /dev/urandom: $!\n";
    read $r, my $n, 32;
    return $n;
}

sub mac { my ($secret, $role, $nc, $ns) = @_;
    hmac_sha256("goim-rpc-auth-v1 $role" . $nc . $ns, $secret) }

# the client side of the handshake; dies with the reason if it fails
sub authenticate {
    my ($s, $secret) = @_;
    my $nc = nonce();
    print $s frame(AUTH_HELLO, 0, $nc);
    my $ch = read_exact($s, 80) // die "RouterRpc: no challenge (refused?)\n";
    my (undef, undef, undef, $op) = unpack 'N n n N', $ch;
    die sprintf("RouterRpc: op %#x instead of a challenge\n", $op) unless $op == AUTH_CHALLENGE;
    my $ns = substr($ch, 16, 32);
    die "RouterRpc: the server's proof is wrong\n"
        unless substr($ch, 48, 32) eq mac($secret, 'server', $nc, $ns);
    print $s frame(AUTH_PROOF, 0, mac($secret, 'client', $nc, $ns));
    return 1;
}

# a connection ready for RPC frames (authenticated when there is a secret)
sub connect {
    my ($port, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => Goim::Time::scaled(3)) or die "connect: $!\n";
    $s->autoflush(1);
    # the proof and the first frame are two writes: no Nagle wait between
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my $secret = exists $o{secret_file} ? secret($o{secret_file}) : secret();
    authenticate($s, $secret) if defined $secret;
    return $s;
}

# one call: the reply's (op, body), or () on EOF or timeout; %o as for
# connect (secret_file => ...)
sub call {
    my ($port, $op, $body, %o) = @_;
    my $s = Goim::RouterRpc::connect($port, %o);
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

# CometRenew (306): registers or refreshes a comet in router's registry;
# comet_renew_reply(...) returns the reply's op instead of dying
sub comet_renew {
    my ($port, %c) = @_;
    my $op = comet_renew_reply($port, %c);
    die "CometRenew $c{id}: no reply\n" unless defined $op && $op == (306 | 0x40000000);
    return 1;
}

sub comet_renew_reply {
    my ($port, %c) = @_;
    my %o = exists $c{secret_file} ? (secret_file => delete $c{secret_file}) : ();
    my $info = f_bytes(1, $c{id});
    $info .= f_bytes(2, $c{push_addr} // '127.0.0.1:1');
    $info .= f_bytes(3, $_) for @{$c{addrs} // []};
    $info .= f_varint(6, $c{weight}) if $c{weight};
    $info .= f_bytes(7, $c{region}) if defined $c{region};
    $info .= f_varint(8, 1) if $c{offline};
    $info .= f_varint(9, $c{conn_count}) if $c{conn_count};
    $info .= f_varint(10, $c{ip_count}) if $c{ip_count};
    my ($op) = call($port, 306, f_bytes(1, $info), %o);
    return $op;
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

# SessionsByMids (304) and SessionsByKeys (305): the keys of the sessions
# router answers with, in its order
sub sessions_keys {
    my ($body) = @_;
    return map { my %s = map { @$_ } decode($_->[1]); $s{2} }
           grep { $_->[0] == 1 } decode($body);
}

sub sessions_by_mids {
    my ($port, @mids) = @_;
    my ($op, $body) = call($port, 304, join '', map { f_varint(1, $_) } @mids);
    die "SessionsByMids: no reply\n" unless defined $op && $op == (304 | 0x40000000);
    return sessions_keys($body);
}

sub sessions_by_keys {
    my ($port, @keys) = @_;
    my ($op, $body) = call($port, 305, join '', map { f_bytes(1, $_) } @keys);
    die "SessionsByKeys: no reply\n" unless defined $op && $op == (305 | 0x40000000);
    return sessions_keys($body);
}

# CometDel (307)
sub comet_del {
    my ($port, $id) = @_;
    my ($op, $body) = call($port, 307, f_bytes(1, $id));
    return defined $body && $body eq "\x08\x01";
}

1;
