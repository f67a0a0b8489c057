package Goim::Client;

# The goim test client shared by ngx_goim's tests.
#
# goim packet: 16-byte big-endian header, then the body:
#     int32 packet length (header + body), int16 header length (16),
#     int16 version, int32 operation, int32 sequence
#
#   my $c = Goim::Client->new('127.0.0.1', $port, 5);   # TCP; dies if it cannot connect
#   my $reply = $c->auth('{"mid":1,"room_id":"live://1","platform":"web","accepts":[1000]}', 1);
#   # $reply: {ver, op => 8, seq, body, len, hlen} or undef (timeout / connection closed)
#   my $hb = $c->heartbeat(2);                          # op 2 -> waits for op 3
#   my $p = $c->read_packet(2);                         # next packet (e.g. a push) or undef
#   $c->close;
#
# Packets that arrive while auth()/heartbeat()/wait_for_op() wait for their
# reply are queued, in order, for read_packet().  Pushes arrive as plain
# packets on TCP.  new(..., transport => 'ws') is reserved for WebSocket.
#
# Pure functions: Goim::Client::pack_packet($ver, $op, $seq, $body) and
# Goim::Client::unpack_packets($bytes) -> list of packets (several back to
# back; an incomplete tail is ignored; a bad header length dies).

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Exporter 'import';
use IO::Select;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time);

use constant {
    HEADER_LEN          => 16,
    PROTO_VERSION       => 1,
    OP_HANDSHAKE        => 0,
    OP_HANDSHAKE_REPLY  => 1,
    OP_HEARTBEAT        => 2,
    OP_HEARTBEAT_REPLY  => 3,
    OP_SEND_MSG         => 4,
    OP_SEND_MSG_REPLY   => 5,
    OP_DISCONNECT_REPLY => 6,
    OP_AUTH             => 7,
    OP_AUTH_REPLY       => 8,
    OP_RAW              => 9,
    OP_PROTO_READY      => 10,
    OP_PROTO_FINISH     => 11,
    OP_CHANGE_ROOM      => 12,
    OP_CHANGE_ROOM_REPLY => 13,
    OP_SUB              => 14,
    OP_SUB_REPLY        => 15,
    OP_UNSUB            => 16,
    OP_UNSUB_REPLY      => 17,
};

our @EXPORT_OK = qw(pack_packet unpack_packets
    HEADER_LEN PROTO_VERSION OP_HANDSHAKE OP_HANDSHAKE_REPLY OP_HEARTBEAT
    OP_HEARTBEAT_REPLY OP_SEND_MSG OP_SEND_MSG_REPLY OP_DISCONNECT_REPLY OP_AUTH
    OP_AUTH_REPLY OP_RAW OP_PROTO_READY OP_PROTO_FINISH OP_CHANGE_ROOM
    OP_CHANGE_ROOM_REPLY OP_SUB OP_SUB_REPLY OP_UNSUB OP_UNSUB_REPLY);
our %EXPORT_TAGS = (all => \@EXPORT_OK, ops => [grep { /^OP_/ } @EXPORT_OK]);

# ------------------------------------------------------------ pure functions
sub pack_packet {
    my ($ver, $op, $seq, $body) = @_;
    $body //= '';
    return pack('l> s> s> l> l>', HEADER_LEN + length $body, HEADER_LEN,
                $ver // PROTO_VERSION, $op, $seq // 0) . $body;
}

# removes the complete packets at the start of $$buf and returns them
sub take_packets {
    my $buf = shift;
    my @out;
    while (length $$buf >= HEADER_LEN) {
        my ($len, $hlen, $ver, $op, $seq) = unpack 'l> s> s> l> l>', $$buf;
        die "Goim::Client: bad packet header (length $len, header length $hlen)\n"
            if $hlen < HEADER_LEN || $len < $hlen;
        last if length $$buf < $len;
        my $pkt = substr($$buf, 0, $len, '');
        push @out, {len => $len, hlen => $hlen, ver => $ver, op => $op, seq => $seq,
                    body => substr($pkt, $hlen)};
    }
    return @out;
}

sub unpack_packets {
    my $bytes = shift;
    return take_packets(\$bytes);
}

# ------------------------------------------------------------------ client
sub new {
    my ($class, $host, $port, $timeout, %opts) = @_;
    my $transport = $opts{transport} // 'tcp';
    die "Goim::Client: ws not implemented yet\n" if $transport eq 'ws';
    die "Goim::Client: unknown transport '$transport'\n" unless $transport eq 'tcp';
    $timeout //= 5;
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp',
                                     Timeout => $timeout)
        or die "Goim::Client: cannot connect to $host:$port: $@\n";
    binmode $sock;
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    $sock->blocking(0);
    return bless {sock => $sock, timeout => $timeout, buf => '', queue => [], eof => 0,
                  host => $host, port => $port}, $class;
}

sub sock { $_[0]{sock} }
sub eof  { $_[0]{eof} }

sub send_raw {
    my ($self, $bytes) = @_;
    my $sock = $self->{sock} or return 0;
    local $SIG{PIPE} = 'IGNORE';
    my $sel = IO::Select->new($sock);
    my $off = 0;
    while ($off < length $bytes) {
        return 0 unless $sel->can_write($self->{timeout});
        my $n = syswrite $sock, $bytes, length($bytes) - $off, $off;
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return 0;
        }
        $off += $n;
    }
    return 1;
}

sub send_packet {
    my ($self, $ver, $op, $seq, $body) = @_;
    return $self->send_raw(pack_packet($ver, $op, $seq, $body));
}

# reads from the socket into the buffer; false on timeout or EOF
sub _fill {
    my ($self, $deadline) = @_;
    my $sock = $self->{sock};
    return 0 if $self->{eof} || !$sock;
    my $sel = IO::Select->new($sock);
    while (1) {
        my $left = $deadline - time;
        return 0 if $left < 0;
        next unless $sel->can_read($left);
        my $n = sysread $sock, my $data, 65536;
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            $self->{eof} = 1;    # connection reset
            return 0;
        }
        if ($n == 0) { $self->{eof} = 1; return 0 }
        $self->{buf} .= $data;
        return 1;
    }
}

sub read_packet {
    my ($self, $timeout) = @_;
    return shift @{$self->{queue}} if @{$self->{queue}};
    my $deadline = time + ($timeout // $self->{timeout});
    while (1) {
        my @p = take_packets(\$self->{buf});
        if (@p) {
            push @{$self->{queue}}, @p;
            return shift @{$self->{queue}};
        }
        return undef unless $self->_fill($deadline);
    }
}

# waits for a packet with operation $op; other packets are queued for read_packet
sub wait_for_op {
    my ($self, $op, $timeout) = @_;
    my $q = $self->{queue};
    for my $i (0 .. $#$q) {
        return splice(@$q, $i, 1) if $q->[$i]{op} == $op;
    }
    my $deadline = time + ($timeout // $self->{timeout});
    while (1) {
        for my $p (take_packets(\$self->{buf})) {
            if ($p->{op} == $op) {
                push @$q, take_packets(\$self->{buf});
                return $p;
            }
            push @$q, $p;
        }
        return undef unless $self->_fill($deadline);
    }
}

sub auth {
    my ($self, $body, $seq, $timeout) = @_;
    $self->send_packet(PROTO_VERSION, OP_AUTH, $seq // 1, $body) or return undef;
    return $self->wait_for_op(OP_AUTH_REPLY, $timeout);
}

sub heartbeat {
    my ($self, $seq, $timeout) = @_;
    $self->send_packet(PROTO_VERSION, OP_HEARTBEAT, $seq // 0, '') or return undef;
    return $self->wait_for_op(OP_HEARTBEAT_REPLY, $timeout);
}

# true if the server closes the connection within $timeout (packets that
# arrive meanwhile are queued for read_packet)
sub wait_closed {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    while (!$self->{eof}) {
        push @{$self->{queue}}, take_packets(\$self->{buf});
        last unless $self->_fill($deadline);
    }
    return $self->{eof};
}

sub close {
    my $self = shift;
    if (my $s = delete $self->{sock}) { CORE::close($s) }
    $self->{eof} = 1;
}

sub DESTROY { $_[0]->close }

1;
