#!/usr/bin/perl
# A minimal goim TCP client for trying ngx_goim by hand:
#   perl scripts/goim-client.pl HOST PORT AUTH_JSON [HEARTBEAT_SECONDS]
# It authenticates, prints every packet it receives (op, seq, body) and
# sends a heartbeat (op 2) every HEARTBEAT_SECONDS (default 30).
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;

my ($host, $port, $auth, $hb) = @ARGV;
die "usage: $0 HOST PORT AUTH_JSON [HEARTBEAT_SECONDS]\n" unless defined $auth;
$hb ||= 30;

my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                 Proto => 'tcp')
    or die "connect $host:$port: $!\n";
$sock->autoflush(1);

sub packet { my ($op, $seq, $body) = @_;
    pack('N n n N N', 16 + length($body), 16, 1, $op, $seq) . $body }

my $seq = 1;
print $sock packet(7, $seq++, $auth);

my $sel = IO::Select->new($sock);
my $buf = '';
my $next_hb = time + $hb;
$| = 1;

while (1) {
    my $wait = $next_hb - time;
    if ($wait <= 0) {
        print $sock packet(2, $seq++, '');
        $next_hb = time + $hb;
        next;
    }
    next unless $sel->can_read($wait);
    my $n = sysread($sock, $buf, 65536, length $buf);
    die "connection closed by the server\n" unless $n;
    while (length($buf) >= 16) {
        my ($len, $hlen, $ver, $op, $s) = unpack('N n n N N', $buf);
        last if length($buf) < $len;
        my $body = substr($buf, 16, $len - 16);
        substr($buf, 0, $len) = '';
        if ($op == 8) {
            print "auth ok (seq $s)\n";
        } elsif ($op == 3) {
            printf "heartbeat reply (seq %d, room online %d)\n", $s,
                length($body) == 4 ? unpack('N', $body) : 0;
        } else {
            print "op $op seq $s: $body\n";
        }
    }
}
