package Goim::Ensure;

# Helpers for the ensure tests (t/072, t/073): ensure pushes, receipts,
# clients that acknowledge (op 18) and read op 19, goim-job's counters.
#
#   my $id = ensure_push('/goim/push/mids?operation=1000&mids=1&ensure=1', 'body');
#   my $c = acking('name', $token);          # Goim::Stack::client + empty op 18
#   my $e = next_ensure($c);                 # {seq, id, packet} or undef
#   my $r = wait_receipt($id, $mid, 'delivered');

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use JSON::PP;
use Test::Nginx::Socket ();
use Goim::Client qw(OP_ACK OP_ENSURE unpack_ensure);
use Goim::Daemon;
use Goim::Stack;
use Goim::Time;

our @EXPORT_OK = qw(http ensure_push receipts wait_receipt acking next_ensure
    job_stats);

sub http {
    my ($method, $path, $body) = @_;
    my $res = HTTP::Tiny->new(timeout => Goim::Time::scaled(5))->request(
        $method, 'http://127.0.0.1:' . Test::Nginx::Socket::server_port() . $path,
        defined $body ? {content => $body} : {});
    my $json = eval { decode_json($res->{content}) } // {raw => $res->{content}};
    return ($res->{status}, $json);
}

# an ensure push: its id, or it dies with the answer
sub ensure_push {
    my ($path, $body) = @_;
    my ($status, $json) = http('POST', $path, $body);
    die "push $path: $status " . encode_json($json) . "\n"
        unless $status == 200 && $json->{data}{id};
    return $json->{data}{id};
}

sub receipts {
    my ($id) = @_;
    my ($status, $json) = http('GET', "/goim/push/receipts?id=$id");
    return $status == 200 ? $json->{data} : [];
}

# until the receipt of (id, mid) is in state; it, or undef
sub wait_receipt {
    my ($id, $mid, $state, $timeout) = @_;
    my $got;
    Goim::Time::wait_until(sub {
        ($got) = grep { $_->{mid} == $mid } @{receipts($id)};
        $got && $got->{state} eq $state;
    }, $timeout // 10);
    return $got && $got->{state} eq $state ? $got : undef;
}

# a client that acknowledges: authenticated, then the empty op 18
sub acking {
    my ($name, $token, %opts) = @_;
    my $c = Goim::Stack::client($name, $token, 1, %opts);
    die "$name: no auth reply\n" unless $Goim::Stack::Clients{$name}{auth};
    $c->send_packet(1, OP_ACK, 0, '');
    return $c;
}

# the next op 19 the client gets, opened; undef after timeout
sub next_ensure {
    my ($c, $timeout) = @_;
    my $p = $c->wait_for_op(OP_ENSURE, Goim::Time::scaled($timeout // 5))
        or return undef;
    return unpack_ensure($p->{body});
}

sub job_stats {
    my $bin = Goim::Daemon::build_dir() . '/goim-job';
    my %s = map { /^(\w+)=(-?\d+)$/ ? ($1, $2) : () }
            `$bin --stats @{[$Goim::Stack::Job->addr]} 2>&1`;
    return \%s;
}

1;
