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
# packets on TCP.
#
# WebSocket: Goim::Client->new($host, $port, $timeout, transport => 'ws',
# path => '/sub', early => $bytes, headers => [...]) upgrades first (dies
# unless the answer is 101 with the right Sec-WebSocket-Accept); `early`
# is sent in the same write as the handshake.  Packets go out as masked
# binary frames; an OpRaw frame (op 9 with its outer header, as goim v2
# sends it) is opened into its inner packets, as goim's client.js does.
# $c->frames lists every frame received ({opcode, len, op}), $c->close_status
# the status of a close frame; ws_frame($opcode, $payload, fin => 0,
# mask => 0, rsv => 1) builds any client frame, send_raw() sends it.
# tls => 1 speaks TLS (no certificate check) on either transport.
# deflate => 1 offers permessage-deflate as browsers do ("permessage-deflate;
# client_max_window_bits"; headers => [...] sends any other offer);
# $c->deflate is the server's Sec-WebSocket-Extensions answer when it took
# the offer (undef otherwise).  A frame with RSV1 set is inflated (each on
# its own: the answer must say server_no_context_takeover) and {rsv1} is 1
# in $c->frames; one without the extension negotiated dies.
# deflate_message($bytes) compresses a client message as RFC 7692 §7.2.1
# does (the frame then needs rsv => 1); inflate_message($bytes) undoes it.
#
# Pure functions: Goim::Client::pack_packet($ver, $op, $seq, $body) and
# Goim::Client::unpack_packets($bytes) -> list of packets (several back to
# back; an incomplete tail is ignored; a bad header length dies);
# unpack_ensure($body) opens an op-19 body: {seq, id, packet => the inner
# packet} (dies on a malformed one).

use strict;
use warnings;

use Compress::Raw::Zlib qw(Z_OK Z_STREAM_END Z_BUF_ERROR Z_SYNC_FLUSH);
use Digest::SHA qw(sha1);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use MIME::Base64 qw(encode_base64);
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
    OP_ACK              => 18,      # not in goim: docs/protocol.md
    OP_ENSURE           => 19,
    OP_POSITION         => 20,      # room recovery
    OP_RECOVERY         => 21,
};

our @EXPORT_OK = qw(pack_packet unpack_packets ws_frame
    deflate_message inflate_message
    HEADER_LEN PROTO_VERSION OP_HANDSHAKE OP_HANDSHAKE_REPLY OP_HEARTBEAT
    OP_HEARTBEAT_REPLY OP_SEND_MSG OP_SEND_MSG_REPLY OP_DISCONNECT_REPLY OP_AUTH
    OP_AUTH_REPLY OP_RAW OP_PROTO_READY OP_PROTO_FINISH OP_CHANGE_ROOM
    OP_CHANGE_ROOM_REPLY OP_SUB OP_SUB_REPLY OP_UNSUB OP_UNSUB_REPLY OP_ACK
    OP_ENSURE OP_POSITION OP_RECOVERY unpack_ensure unpack_position);
our %EXPORT_TAGS = (all => \@EXPORT_OK, ops => [grep { /^OP_/ } @EXPORT_OK]);

# ------------------------------------------------------------ pure functions
sub unpack_ensure {
    my ($body) = @_;
    die "op 19: body of " . length($body) . " bytes\n" if length($body) < 9;
    my ($hi, $lo, $n) = unpack 'N N C', $body;
    die "op 19: id length $n\n" if $n < 1 || length($body) < 9 + $n + HEADER_LEN;
    my $id = substr $body, 9, $n;
    my ($inner) = unpack_packets(substr $body, 9 + $n);
    die "op 19: no inner packet\n" unless $inner;
    return {seq => $hi * 4294967296 + $lo, id => $id, packet => $inner};
}

# op 20: kind (0 room, 1 broadcasts) | epoch u64 | seq u64 | the packet
sub unpack_position {
    my ($body) = @_;
    die "op 20: body of " . length($body) . " bytes\n" if length($body) < 17 + HEADER_LEN;
    my ($kind, $ehi, $elo, $shi, $slo) = unpack 'C N N N N', $body;
    my ($inner) = unpack_packets(substr $body, 17);
    die "op 20: no inner packet\n" unless $inner;
    return {stream => $kind ? 'all' : 'room', epoch => $ehi * 4294967296 + $elo,
            seq => $shi * 4294967296 + $slo, packet => $inner};
}

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

# permessage-deflate, one message on its own: raw deflate, sync flush, the
# 00 00 ff ff tail left out
sub deflate_message {
    my ($bytes) = @_;
    my ($d, $st) = Compress::Raw::Zlib::Deflate->new(-WindowBits => -15,
                                                     -AppendOutput => 1);
    die "deflate_message: $st\n" unless $d;
    my $out = '';
    $d->deflate($bytes, $out) == Z_OK or die "deflate_message: deflate\n";
    $d->flush($out, Z_SYNC_FLUSH) == Z_OK or die "deflate_message: flush\n";
    $out =~ s/\x00\x00\xff\xff\z// or die "deflate_message: no sync tail\n";
    return $out;
}

sub inflate_message {
    my ($bytes) = @_;
    my ($i, $st) = Compress::Raw::Zlib::Inflate->new(-WindowBits => -15,
                                                     -AppendOutput => 1,
                                                     -ConsumeInput => 1);
    die "inflate_message: $st\n" unless $i;
    my $in = $bytes . "\x00\x00\xff\xff";
    my $out = '';
    $st = $i->inflate($in, $out);
    die "inflate_message: $st\n"
        unless $st == Z_OK || $st == Z_STREAM_END || $st == Z_BUF_ERROR;
    return $out;
}

# a client WebSocket frame: masked, final, unless told otherwise
sub ws_frame {
    my ($opcode, $payload, %o) = @_;
    $payload //= '';
    my $fin = exists $o{fin} ? $o{fin} : 1;
    my $mask = exists $o{mask} ? $o{mask} : 1;
    my $len = length $payload;
    my $f = chr(($fin ? 0x80 : 0) | ($o{rsv} ? 0x40 : 0) | $opcode);
    my $m = $mask ? 0x80 : 0;
    if ($len < 126) { $f .= chr($m | $len) }
    elsif ($len < 65536) { $f .= chr($m | 126) . pack('n', $len) }
    else { $f .= chr($m | 127) . pack('Q>', $len) }
    return $f . $payload unless $mask;
    my @k = map { int rand 256 } 1 .. 4;
    my $i = 0;
    my $masked = join '', map { chr(ord($_) ^ $k[$i++ % 4]) } split //, $payload;
    return $f . pack('C4', @k) . $masked;
}

# ------------------------------------------------------------------ client
sub new {
    my ($class, $host, $port, $timeout, %opts) = @_;
    my $transport = $opts{transport} // 'tcp';
    die "Goim::Client: unknown transport '$transport'\n"
        unless $transport eq 'tcp' || $transport eq 'ws';
    $timeout //= 5;
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp',
                                     Timeout => $timeout)
        or die "Goim::Client: cannot connect to $host:$port: $@\n";
    binmode $sock;
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    if ($opts{tls}) {
        # TLS stays blocking: reads wait on select() and SSL's own buffer
        require IO::Socket::SSL;
        IO::Socket::SSL->start_SSL($sock, SSL_verify_mode => 0,
                                   SSL_hostname => $opts{sni} // '')
            or die "Goim::Client: TLS handshake with $host:$port failed: "
                   . IO::Socket::SSL::errstr() . "\n";
    } else {
        $sock->blocking(0);
    }
    my $self = bless {sock => $sock, timeout => $timeout, buf => '', queue => [], eof => 0,
                      host => $host, port => $port, ws => $transport eq 'ws',
                      tls => $opts{tls},
                      raw => '', frames => []}, $class;
    $self->_upgrade(%opts) if $self->{ws};
    return $self;
}

sub _upgrade {
    my ($self, %o) = @_;
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $req = "GET " . ($o{path} // '/sub') . " HTTP/1.1\r\n"
            . "Host: $self->{host}:$self->{port}\r\n"
            . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n"
            . ($o{deflate} ? "Sec-WebSocket-Extensions: permessage-deflate; "
                             . "client_max_window_bits\r\n" : '')
            . join('', map { "$_\r\n" } @{$o{headers} // []}) . "\r\n";
    $self->send_raw($req . ($o{early} // '')) or die "Goim::Client: upgrade not sent\n";
    my $deadline = time + $self->{timeout};
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $sel = IO::Select->new($self->{sock});
        die "Goim::Client: no upgrade answer\n"
            unless ($self->{tls} && $self->{sock}->pending) || $sel->can_read($deadline - time);
        my $n = sysread $self->{sock}, my $data, 65536;
        next if !defined $n && ($! == EAGAIN || $! == EINTR);
        die "Goim::Client: connection closed during the upgrade: $head\n" unless $n;
        $head .= $data;
    }
    my ($headers, $rest) = split /\r\n\r\n/, $head, 2;
    die "Goim::Client: upgrade refused: $headers\n" unless $headers =~ m{^HTTP/1\.1 101 };
    my $accept = encode_base64(sha1($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
    die "Goim::Client: bad Sec-WebSocket-Accept in $headers\n"
        unless $headers =~ /^Sec-WebSocket-Accept: \Q$accept\E\r?$/mi;
    $self->{response_headers} = $headers;
    if ($headers =~ /^Sec-WebSocket-Extensions:[ \t]*(.*?)\r?$/mi) {
        my $ext = $1;
        die "Goim::Client: an extension answered that was not offered: $ext\n"
            unless $ext =~ /^permessage-deflate\b/;
        die "Goim::Client: permessage-deflate without server_no_context_takeover\n"
            unless $ext =~ /\bserver_no_context_takeover\b/;
        $self->{deflate} = $ext;
    }
    $self->{raw} = $rest // '';
    $self->_frames;
}

sub frames { $_[0]{frames} }
sub deflate { $_[0]{deflate} }

# reads what arrives within $timeout without taking packets off the queue
sub pump {
    my ($self, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        push @{$self->{queue}}, take_packets(\$self->{buf});
        last unless $self->_fill($deadline);
    }
    push @{$self->{queue}}, take_packets(\$self->{buf});
}
sub close_status { $_[0]{close_status} }
sub response_headers { $_[0]{response_headers} }

# moves the complete frames in {raw} into packets in {buf}
sub _frames {
    my $self = shift;
    while (length $self->{raw} >= 2) {
        my ($b0, $b1) = unpack 'C2', $self->{raw};
        my $len = $b1 & 0x7f;
        my $off = 2;
        if ($len == 126) {
            last if length $self->{raw} < 4;
            $len = unpack 'n', substr($self->{raw}, 2, 2); $off = 4;
        } elsif ($len == 127) {
            last if length $self->{raw} < 10;
            $len = unpack 'Q>', substr($self->{raw}, 2, 8); $off = 10;
        }
        die "Goim::Client: the server sent a masked frame\n" if $b1 & 0x80;
        last if length $self->{raw} < $off + $len;
        my $payload = substr($self->{raw}, $off, $len);
        substr($self->{raw}, 0, $off + $len, '');
        my $opcode = $b0 & 0x0f;
        my $rsv1 = ($b0 & 0x40) ? 1 : 0;
        if ($rsv1) {
            die "Goim::Client: RSV1 without permessage-deflate\n" unless $self->{deflate};
            die "Goim::Client: RSV1 on a frame of opcode $opcode\n"
                unless $opcode == 1 || $opcode == 2;
            $payload = inflate_message($payload);
        }
        my $op = length $payload >= 16 ? unpack('x8 l>', $payload) : undef;
        push @{$self->{frames}}, {opcode => $opcode, len => $len, op => $op, fin => $b0 >> 7,
                                  rsv1 => $rsv1};
        if ($opcode == 8) {
            $self->{close_status} = $len >= 2 ? unpack('n', $payload) : 1005;
            $self->{eof} = 1;
        } elsif ($opcode == 1 || $opcode == 2) {
            # goim v2: a batch keeps its outer op-9 header on WebSocket
            $payload = substr($payload, 16) if defined $op && $op == OP_RAW;
            $self->{buf} .= $payload;
        }
    }
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
    my $p = pack_packet($ver, $op, $seq, $body);
    return $self->send_raw($self->{ws} ? ws_frame(2, $p) : $p);
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
        unless ($self->{tls} && $sock->pending) {
            next unless $sel->can_read($left);
        }
        my $n = sysread $sock, my $data, 65536;
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            $self->{eof} = 1;    # connection reset
            return 0;
        }
        if ($n == 0) { $self->{eof} = 1; return 0 }
        if ($self->{ws}) {
            $self->{raw} .= $data;
            $self->_frames;
            return 1 unless $self->{eof} && !length $self->{buf};
            return 0;
        }
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
        my @p = take_packets(\$self->{buf});
        while (my $p = shift @p) {
            if ($p->{op} == $op) {
                # what came behind it in the same read stays queued
                push @$q, @p;
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
