package Goim::Sse;

# An SSE (text/event-stream) client for comet's goim_comet_sse locations,
# and the control call beside them.
#
#   my $s = Goim::Sse->new(token => $json, via => 'query');   # or 'header',
#                                                             # 'cookie', 'none'
#   $s->status                 # 200, 403... (waits for the answer's head)
#   $s->header('content-type') # a header of the answer, lower-cased name
#   $s->body                   # an error answer's body (Content-Length)
#   my $e = $s->event(5);      # {event, op, b64, id, data, bytes} or undef
#   my $e = $s->event_op(13);  # the next event of op 13 (others kept)
#   $s->comments               # comment lines seen so far
#   $s->closed(5)              # true once the server closed the stream
#   $s->session                # the session id its op 8 event gave
#   Goim::Sse::control($session, $op, $body)   # -> ($status, $json)
#
# new() takes path (/sse), port (the test nginx's), last_event_id (sent as
# the Last-Event-ID header), query (more arguments), headers ([...]),
# method (GET), body (sent with its Content-Length), rcvbuf (SO_RCVBUF
# set before connecting: a client that reads slowly fills up soon).
# Events are parsed as EventSource does (fields event, id, data; data
# lines joined with LF; a ".b64" event name decoded from base64 into
# {data}); id is the last id seen, as EventSource keeps it.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use Socket qw(SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use Time::HiRes qw(time);
use Test::Nginx::Socket ();
use Goim::Time;

sub escape {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub new {
    my ($class, %o) = @_;
    my $port = $o{port} // Test::Nginx::Socket::server_port();
    my $sock;
    if ($o{rcvbuf}) {
        # a small receive window, set before the connection opens
        $sock = IO::Socket::INET->new(Proto => 'tcp') or die "Goim::Sse: socket: $!\n";
        setsockopt($sock, SOL_SOCKET, SO_RCVBUF, pack('i', $o{rcvbuf})) or die "SO_RCVBUF: $!\n";
        $sock->connect(pack_sockaddr_in($port, inet_aton('127.0.0.1')))
            or die "Goim::Sse: cannot connect to $port: $!\n";
    } else {
        $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => Goim::Time::scaled(5))
            or die "Goim::Sse: cannot connect to $port: $!\n";
    }
    $sock->blocking(0);
    my $via = $o{via} // 'query';
    my @q = @{$o{query} // []};
    my @h = @{$o{headers} // []};
    if (defined $o{token}) {
        push @q, 'token=' . escape($o{token}) if $via eq 'query';
        push @h, "X-Goim-Token: $o{token}" if $via eq 'header';
        push @h, 'Cookie: goim_token=' . escape($o{token}) if $via eq 'cookie';
    }
    push @h, "Last-Event-ID: $o{last_event_id}" if defined $o{last_event_id};
    push @h, 'Content-Length: ' . length $o{body} if defined $o{body};
    my $path = ($o{path} // '/sse') . (@q ? '?' . join('&', @q) : '');
    my $req = join("\r\n", ($o{method} // 'GET') . " $path HTTP/1.1", 'Host: localhost',
                   'Accept: text/event-stream', @h) . "\r\n\r\n" . ($o{body} // '');
    syswrite($sock, $req) == length $req or die "Goim::Sse: write: $!\n";
    return bless {sock => $sock, buf => '', events => [], comments => 0,
                  id => '', eof => 0}, $class;
}

# reads what is there, waiting up to $timeout s for something; 0 at EOF
sub _fill {
    my ($self, $timeout) = @_;
    return 0 if $self->{eof};
    my $sel = IO::Select->new($self->{sock});
    return 1 unless $sel->can_read($timeout);
    my $n = sysread($self->{sock}, my $chunk, 65536);
    if (!defined $n) {
        return 1 if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
        $self->{eof} = 1;
        return 0;
    }
    if ($n == 0) {
        $self->{eof} = 1;
        return 0;
    }
    $self->{buf} .= $chunk;
    return 1;
}

sub _head {
    my ($self, $timeout) = @_;
    return 1 if defined $self->{status};
    my $deadline = time + Goim::Time::scaled($timeout // 5);
    while ($self->{buf} !~ /\r\n\r\n/) {
        return 0 if time > $deadline || !$self->_fill(0.05) && $self->{eof};
    }
    $self->{buf} =~ s/^(.*?)\r\n\r\n//s;
    my ($line, @h) = split /\r\n/, $1;
    ($self->{status}) = $line =~ m{^HTTP/1\.[01] (\d+)};
    $self->{headers} = {map { my ($k, $v) = /^([^:]+):\s*(.*)$/; (lc $k, $v) } @h};
    return 1;
}

sub status { my $self = shift; $self->_head(@_); return $self->{status} }

sub header { my ($self, $name) = @_; $self->_head; return $self->{headers}{lc $name} }

sub body {
    my ($self, $timeout) = @_;
    $self->_head($timeout) or return undef;
    my $len = $self->{headers}{'content-length'} // 0;
    my $deadline = time + Goim::Time::scaled($timeout // 5);
    while (length $self->{buf} < $len) {
        last if time > $deadline || !$self->_fill(0.05) && $self->{eof};
    }
    return substr($self->{buf}, 0, $len);
}

sub json { my $b = $_[0]->body; return defined $b && length $b ? decode_json($b) : undef }

# one event block out of the buffer, or undef if none is whole yet
sub _parse {
    my ($self) = @_;
    while ($self->{buf} =~ s/^(.*?)\n\n//s) {
        my $block = $1;
        my (%e, @data);
        my $fields = 0;
        for my $l (split /\n/, $block, -1) {
            if ($l =~ /^:/) {
                $self->{comments}++;
                next;
            }
            my ($f, $v) = $l =~ /^([^:]*):? ?(.*)$/s;
            $fields++;
            if ($f eq 'data') { push @data, $v }
            elsif ($f eq 'event') { $e{event} = $v }
            elsif ($f eq 'id') { $self->{id} = $v; $e{has_id} = 1 }
        }
        next unless @data;
        $e{data} = join "\n", @data;
        $e{event} //= 'message';
        ($e{op}, $e{b64}) = $e{event} =~ /^(\d+)(\.b64)?$/;
        $e{data} = decode_base64($e{data}) if $e{b64};
        $e{id} = $self->{id};
        $e{block} = $block;
        return \%e;
    }
    return undef;
}

sub event {
    my ($self, $timeout) = @_;
    return shift @{$self->{events}} if @{$self->{events}};
    $self->_head($timeout) or return undef;
    my $deadline = time + Goim::Time::scaled($timeout // 5);
    while (1) {
        my $e = $self->_parse;
        return $e if $e;
        return undef if time > $deadline;
        $self->_fill(0.05) or return $self->_parse;
    }
}

# the next event of op $op; the others before it are kept, in order
sub event_op {
    my ($self, $op, $timeout) = @_;
    for my $i (0 .. $#{$self->{events}}) {
        return splice(@{$self->{events}}, $i, 1) if ($self->{events}[$i]{op} // -1) == $op;
    }
    my $deadline = time + Goim::Time::scaled($timeout // 5);
    my @kept;
    while (time <= $deadline) {
        $self->_head($timeout) or last;
        my $e = $self->_parse;
        if ($e) {
            if (($e->{op} // -1) == $op) {
                push @{$self->{events}}, @kept;
                return $e;
            }
            push @kept, $e;
            next;
        }
        $self->_fill(0.05) or last;
    }
    push @{$self->{events}}, @kept;
    return undef;
}

sub comments {
    my ($self) = @_;
    $self->_fill(0) while !$self->{eof} && IO::Select->new($self->{sock})->can_read(0)
                          && length($self->{buf}) < 1 << 20 && $self->_fill(0);
    while (my $e = $self->_parse) { push @{$self->{events}}, $e }
    return $self->{comments};
}

sub closed {
    my ($self, $timeout) = @_;
    my $deadline = time + Goim::Time::scaled($timeout // 5);
    while (!$self->{eof}) {
        return 0 if time > $deadline;
        $self->_fill(0.05);
        # keep the buffer bounded while waiting
        while (my $e = $self->_parse) { push @{$self->{events}}, $e }
    }
    return 1;
}

sub session {
    my ($self) = @_;
    return $self->{session} if $self->{session};
    my $e = $self->event_op(8) or return undef;
    $self->{auth} = decode_json($e->{data});
    return $self->{session} = $self->{auth}{session};
}

sub auth { my $self = shift; $self->session; return $self->{auth} }

sub close { my $self = shift; close $self->{sock} if $self->{sock}; delete $self->{sock} }

# POST /sse/control?session=S&op=N with the body: ($status, decoded JSON)
sub control {
    my ($session, $op, $body, %o) = @_;
    require HTTP::Tiny;
    my $http = HTTP::Tiny->new(timeout => Goim::Time::scaled(5), keep_alive => 0);
    my $url = 'http://127.0.0.1:' . ($o{port} // Test::Nginx::Socket::server_port())
              . ($o{path} // '/sse/control')
              . '?' . join('&', (defined $session ? 'session=' . escape($session) : ()),
                                (defined $op ? "op=$op" : ()));
    my $r = $http->request($o{method} // 'POST', $url, {content => $body // ''});
    my $json = eval { decode_json($r->{content}) };
    return ($r->{status}, $json, $r->{content});
}

1;
