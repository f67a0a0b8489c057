package Goim::Poll;

# A long-poll client for comet's goim_comet_poll locations: requests on one
# keep-alive connection, each answer read whole (Content-Length).
#
#   my $p = Goim::Poll->new(token => $json, via => 'query');  # 'header',
#                                       # 'cookie', 'none'; opens a session
#   $p->open_answer             # the open's answer: see get()
#   $p->session, $p->cursor     # the session id, the last X-Goim-Cursor
#   $p->auth                    # op 8's JSON
#   my $a = $p->poll;           # a poll with the cursor, waits for its
#                               # answer (timeout: 30 s, scaled)
#   $p->send_poll; ...; $a = $p->answer   # the same in two steps, for a
#                               # poll held while the test pushes
#   $p->get($path, %o)          # any request on the connection:
#                               # {status, headers, body, json, events}
#   $p->reconnect               # a new connection (the next poll may
#                               # land on another worker)
#
# An answer's events are parsed as Goim::Sse's ({event, op, b64, id,
# data, block}); poll() and answer() take the cursor from X-Goim-Cursor.
# new() takes path (/poll), port, last_event_id (the argument), headers,
# query (more arguments), no_open (only connect).

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use Time::HiRes qw(time);
use Test::Nginx::Socket ();
use Goim::Sse;
use Goim::Time;

sub new {
    my ($class, %o) = @_;
    my $self = bless {port => $o{port} // Test::Nginx::Socket::server_port(),
                      path => $o{path} // '/poll', cursor => 0, buf => ''}, $class;
    $self->reconnect;
    return $self if $o{no_open};
    my $via = $o{via} // 'query';
    my @q = @{$o{query} // []};
    my @h = @{$o{headers} // []};
    if (defined $o{token}) {
        push @q, 'token=' . Goim::Sse::escape($o{token}) if $via eq 'query';
        push @h, "X-Goim-Token: $o{token}" if $via eq 'header';
        push @h, 'Cookie: goim_token=' . Goim::Sse::escape($o{token}) if $via eq 'cookie';
    }
    push @q, 'last_event_id=' . Goim::Sse::escape($o{last_event_id}) if defined $o{last_event_id};
    my $a = $self->get($self->{path} . (@q ? '?' . join('&', @q) : ''), headers => \@h,
                       method => $o{method}, body => $o{body});
    $self->{open} = $a;
    if ($a && $a->{status} == 200) {
        $self->{session} = $a->{headers}{'x-goim-session'};
        $self->{cursor} = $a->{headers}{'x-goim-cursor'};
        for my $e (@{$a->{events}}) {
            $self->{auth} = decode_json($e->{data}) if ($e->{op} // 0) == 8;
        }
    }
    return $self;
}

sub reconnect {
    my ($self) = @_;
    close $self->{sock} if $self->{sock};
    $self->{sock} = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
                                          Proto => 'tcp', Timeout => Goim::Time::scaled(5))
        or die "Goim::Poll: cannot connect to $self->{port}: $!\n";
    $self->{sock}->blocking(0);
    $self->{buf} = '';
    $self->{eof} = 0;
    return $self;
}

sub open_answer { $_[0]{open} }
sub session { $_[0]{session} }
sub cursor { $_[0]{cursor} }
sub auth { $_[0]{auth} }

sub poll_path {
    my ($self, %o) = @_;
    my $cursor = exists $o{cursor} ? $o{cursor} : $self->{cursor};
    my $session = exists $o{session} ? $o{session} : $self->{session};
    return $self->{path} . '?' . join('&', (defined $session ? 'session=' . Goim::Sse::escape($session) : ()),
                                          (defined $cursor ? "cursor=$cursor" : ()));
}

sub send_poll {
    my ($self, %o) = @_;
    $self->send($self->poll_path(%o), %o);
}

sub poll {
    my ($self, %o) = @_;
    $self->send_poll(%o);
    return $self->answer($o{timeout});
}

# the answer to what was sent; a 200 moves the cursor
sub answer {
    my ($self, $timeout) = @_;
    my $a = $self->read($timeout // 30) or return undef;
    $self->{cursor} = $a->{headers}{'x-goim-cursor'}
        if $a->{status} == 200 && defined $a->{headers}{'x-goim-cursor'};
    return $a;
}

sub send {
    my ($self, $path, %o) = @_;
    my @h = @{$o{headers} // []};
    push @h, 'Content-Length: ' . length $o{body} if defined $o{body};
    my $req = join("\r\n", ($o{method} // 'GET') . " $path HTTP/1.1", 'Host: localhost', @h)
              . "\r\n\r\n" . ($o{body} // '');
    my $n = syswrite($self->{sock}, $req);
    die "Goim::Poll: write: $!\n" unless defined $n && $n == length $req;
}

sub get {
    my ($self, $path, %o) = @_;
    $self->send($path, %o);
    return $self->read($o{timeout} // 10);
}

sub _fill {
    my ($self, $wait) = @_;
    return 0 if $self->{eof};
    return 1 unless IO::Select->new($self->{sock})->can_read($wait);
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

# one whole answer, or undef at the deadline or the connection's end
sub read {
    my ($self, $timeout) = @_;
    my $deadline = time + Goim::Time::scaled($timeout // 10);
    while ($self->{buf} !~ /\r\n\r\n/) {
        return undef if time > $deadline || !$self->_fill(0.05) && $self->{eof};
    }
    $self->{buf} =~ /^(.*?)\r\n\r\n/s;
    my $headlen = length($1) + 4;
    my ($line, @h) = split /\r\n/, $1;
    my ($status) = $line =~ m{^HTTP/1\.[01] (\d+)};
    my %h = map { my ($k, $v) = /^([^:]+):\s*(.*)$/; (lc $k, $v) } @h;
    my $len = $h{'content-length'} // 0;
    while (length($self->{buf}) < $headlen + $len) {
        return undef if time > $deadline || !$self->_fill(0.05) && $self->{eof};
    }
    my $body = substr($self->{buf}, $headlen, $len);
    substr($self->{buf}, 0, $headlen + $len) = '';
    my $a = {status => $status, headers => \%h, body => $body, events => events($body)};
    $a->{json} = eval { decode_json($body) } if ($h{'content-type'} // '') =~ /json/;
    return $a;
}

# the events of a text/event-stream body, as EventSource reads them
sub events {
    my ($body) = @_;
    my (@events, $id);
    for my $block (split /\n\n/, $body) {
        my (%e, @data);
        for my $l (split /\n/, $block, -1) {
            next if $l =~ /^:/;
            my ($f, $v) = $l =~ /^([^:]*):? ?(.*)$/s;
            if ($f eq 'data') { push @data, $v }
            elsif ($f eq 'event') { $e{event} = $v }
            elsif ($f eq 'id') { $id = $v; $e{has_id} = 1 }
        }
        next unless @data;
        $e{data} = join "\n", @data;
        $e{event} //= 'message';
        ($e{op}, $e{b64}) = $e{event} =~ /^(\d+)(\.b64)?$/;
        $e{data} = decode_base64($e{data}) if $e{b64};
        $e{id} = $id;
        $e{block} = $block;
        push @events, \%e;
    }
    return \@events;
}

# the server closed the connection (within $timeout s)
sub closed {
    my ($self, $timeout) = @_;
    my $deadline = time + Goim::Time::scaled($timeout // 5);
    while (!$self->{eof}) {
        return 0 if time > $deadline;
        $self->_fill(0.05);
    }
    return 1;
}

sub close { my $self = shift; close $self->{sock} if $self->{sock}; delete $self->{sock} }

1;
