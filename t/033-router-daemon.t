# goim-router as a daemon: a comet that stops renewing is dropped with all
# its sessions (counts corrected), CometDel does the same, bad RPC input
# closes only the offending connection, config errors are one line and
# exit 1, SIGHUP reloads, --stats answers, SIGTERM exits 0.
#
# RPC frames are written by hand here (docs/protocol.md): a 16-byte goim
# header (length, 16, version 1, method, sequence) and a protobuf body.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use Goim::RouterRpc;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);
use Goim::Time;

our $Bin;

sub stats {
    my $port = shift;
    my %h = map { /^(\w+)=(-?\d+)$/ ? ($1, $2) : () } `$Bin --stats 127.0.0.1:$port 2>/dev/null`;
    return \%h;
}

sub rpc_conn {
    Goim::RouterRpc::connect($ENV{TEST_NGINX_ROUTER_PORT});
}

sub frame { my ($op, $seq, $body) = @_;
    pack('N n n N N', 16 + length $body, 16, 1, $op, $seq) . $body }

# one frame back: (op, seq, body), or () on EOF or timeout; bytes of the
# next frames wait in %Unread
our %Unread;
sub read_frame {
    my ($s, $timeout) = @_;
    my $buf = \($Unread{"$s"} //= '');
    my $deadline = time + Goim::Time::scaled($timeout // 3);
    my $sel = IO::Select->new($s);
    while (1) {
        if (length $$buf >= 16) {
            my ($len, undef, undef, $op, $seq) = unpack 'N n n N N', $$buf;
            if (length $$buf >= $len) {
                my $body = substr($$buf, 16, $len - 16);
                substr($$buf, 0, $len) = '';
                return ($op, $seq, $body);
            }
        }
        my $left = $deadline - time;
        return () if $left <= 0 || !$sel->can_read($left);
        my $n = sysread $s, $$buf, 65536, length $$buf;
        return () unless $n;
    }
}

# true when the peer closes s within timeout
sub closed {
    my ($s, $timeout) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + Goim::Time::scaled($timeout);
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread $s, my $buf, 4096;
        return 1 if !defined $n || $n == 0;
    }
    return 0;
}

sub str_field { my ($no, $s) = @_; chr($no << 3 | 2) . chr(length $s) . $s }

Goim::Stack::setup();
$Bin = Goim::Daemon::build_dir() . '/goim-router';

# this file's router: comets expire 2 s after their last renewal (comet
# renews every 10 s by default), partial frames wait 1 s at most
{
    my $port = $Goim::Stack::Router->port;
    $Goim::Stack::Router->stop;
    $Goim::Stack::Router = Goim::Daemon->start('router', name => 'router-daemon', port => $port,
        args => ['--comet-ttl', 2, '--frame-timeout', 1, '--max-frame', 4096]);
}

run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: a comet that stops renewing goes, with all its sessions and their counts
--- init
Goim::Stack::client('e1', '{"mid":801,"room_id":"exp://1","accepts":[1000]}', 1);
Goim::Stack::client('e2', '{"mid":802,"room_id":"exp://1","accepts":[1000]}', 1);
Test::More::ok($Goim::Stack::Router->wait_for_log(qr/comet comet-test expired/, Goim::Time::scaled(6)),
               'TEST 1 - the comet expired');
Test::More::ok($Goim::Stack::Router->wait_for_log(qr/[1-9]\d* sessions dropped with their comets, 0 left/,
                                                 Goim::Time::scaled(3)),
               'TEST 1 - and its sessions went with it');
my $s = main::stats($ENV{TEST_NGINX_ROUTER_PORT});
Test::More::is($s->{sessions}, 0, 'TEST 1 - no session left');
Test::More::is($s->{rooms}, 0, 'TEST 1 - no room left');
--- request
GET /goim/online/room?type=exp&rooms=1
--- response_body
{"code":0,"message":"","data":{"1":0}}



=== TEST 2: CometDel drops a comet and its sessions
--- init
my $port = $ENV{TEST_NGINX_ROUTER_PORT};
my $c = Goim::Stack::client('x1', '{"mid":811,"room_id":"del://1","accepts":[1000]}', 1);
# wait for the comet to be registered again (RenewOnline every 10 s)
Goim::Time::wait_until(sub { main::stats($port)->{comets} }, 12, 0.2);
$c->heartbeat(2, Goim::Time::scaled(3));
my $n = main::stats($port)->{sessions};
Test::More::cmp_ok($n, '>=', 1, 'TEST 2 - sessions before');
my $s = main::rpc_conn();
print $s main::frame(307, 9, main::str_field(1, 'comet-test'));
my ($op, $seq, $body) = main::read_frame($s);
Test::More::is($op, 307 | 0x40000000, 'TEST 2 - CometDel reply');
Test::More::is($seq, 9, 'TEST 2 - sequence echoed');
Test::More::is($body, "\x08\x01", 'TEST 2 - has = true');
Test::More::is(main::stats($port)->{sessions}, 0, 'TEST 2 - its sessions are gone');
print $s main::frame(307, 10, main::str_field(1, 'comet-test'));
($op, $seq, $body) = main::read_frame($s);
Test::More::is($body, '', 'TEST 2 - a second CometDel: has = false');
--- request
GET /goim/online/room?type=del&rooms=1
--- response_body
{"code":0,"message":"","data":{"1":0}}



=== TEST 3: bad RPC input closes that connection only
--- init
my $good = main::rpc_conn();
my @bad = (
    ['a header length other than 16', pack('N n n N N', 20, 12, 1, 312, 1) . 'xxxx'],
    ['a version other than 1', main::frame(312, 1, '') =~ s/^(.{6})../$1\x00\x07/sr],
    ['an unknown method', main::frame(999, 1, '')],
    ['malformed protobuf', main::frame(301, 1, "\x0a\x7f\x01")],
    ['a frame over max_frame', pack('N n n N N', 16 + 5000, 16, 1, 301, 1)],
    ['a reply operation', main::frame(312 | 0x40000000, 1, '')],
);
for my $b (@bad) {
    my $s = main::rpc_conn();
    print $s $b->[1];
    Test::More::ok(main::closed($s, 3), "TEST 3 - $b->[0] closes the connection");
}
print $good main::frame(312, 77, '');
my ($op, $seq) = main::read_frame($good);
Test::More::is($op, 312 | 0x40000000, 'TEST 3 - another connection still gets its replies');
Test::More::is($seq, 77, 'TEST 3 - sequence echoed');
# a method router does not serve: an error reply, the connection stays
print $good main::frame(101, 78, '');
($op, $seq) = main::read_frame($good);
Test::More::is($op, 101 | 0x20000000, 'TEST 3 - a method served elsewhere gets an error reply');
print $good main::frame(312, 79, '');
($op, $seq) = main::read_frame($good);
Test::More::is($seq, 79, 'TEST 3 - and the connection stays open');
# several frames in one write, the last one bad: the good ones are answered
# (in one write), then the connection is closed
my $s = main::rpc_conn();
print $s join '', map({ main::frame(312, $_, '') } 1 .. 3), main::frame(999, 4, '');
my @seqs;
while (my ($o, $q) = main::read_frame($s, 3)) { push @seqs, $q; last if @seqs == 3 }
Test::More::is("@seqs", '1 2 3', 'TEST 3 - replies before a bad frame still go out');
Test::More::ok(main::closed($s, 3), 'TEST 3 - then the connection is closed');
--- request
GET /goim/online/total
--- response_body_like
"session_count":\d+\}\}$



=== TEST 4: a partial frame that does not complete within frame_timeout is closed (slow loris)
--- init
my $s = main::rpc_conn();
print $s substr(main::frame(312, 1, ''), 0, 10);
my $t0 = time;
Test::More::ok(main::closed($s, 4), 'TEST 4 - closed');
Test::More::cmp_ok(time - $t0, '>=', 0.9, 'TEST 4 - after frame_timeout');
Test::More::ok($Goim::Stack::Router->running, 'TEST 4 - router still running');
--- request
GET /goim/online/total
--- response_body_like
"session_count":\d+\}\}$



=== TEST 5: config errors: one line on stderr, exit 1; -t checks
--- init
my $dir = "t/servroot-daemons";
open my $fh, '>', "$dir/bad.conf" or die; print $fh "session_ttl = \"x\";\n"; close $fh;
open $fh, '>', "$dir/syntax.conf" or die; print $fh "session_ttl = ;\n"; close $fh;
open $fh, '>', "$dir/good.conf" or die; print $fh "session_ttl = 60;\ncomet_ttl = 5;\n"; close $fh;
for my $case (['--session-ttl 0', 'out of bounds'],
              ['--comet-ttl abc', 'not a number'],
              ['--no-such-option 1', 'an unknown flag'],
              ["-c $dir/bad.conf", 'a value of the wrong type'],
              ["-c $dir/syntax.conf", 'a syntax error'],
              ["-c $dir/missing.conf", 'a missing file']) {
    my $err = `$main::Bin $case->[0] -t 2>&1 >/dev/null`;
    my $st = $? >> 8;
    Test::More::is($st, 1, "TEST 5 - $case->[1]: exit 1");
    my @lines = split /\n/, $err;
    Test::More::is(scalar @lines, 1, "TEST 5 - $case->[1]: one line ($err)");
}
my $out = `$main::Bin -c $dir/good.conf -t 2>&1`;
Test::More::is($? >> 8, 0, 'TEST 5 - a good file: -t exits 0');
--- request
GET /goim/online/total
--- response_body_like
"session_count":\d+\}\}$



=== TEST 6: SIGHUP reloads the file, keeps the old one when the new is bad; SIGTERM exits 0
--- init
my $dir = "t/servroot-daemons";
my $conf = "$dir/hup.conf";
open my $fh, '>', $conf or die; print $fh "session_ttl = 60;\n"; close $fh;
my $d = Goim::Daemon->start('router', name => 'router-hup', no_env => 1, args => ['-c', $conf]);
Test::More::ok($d->wait_for_log(qr/session ttl 60 s/, Goim::Time::scaled(3)), 'TEST 6 - started with the file');
open $fh, '>', $conf or die; print $fh "session_ttl = 90;\n"; close $fh;
kill 'HUP', $d->pid;
Test::More::ok($d->wait_for_log(qr/session ttl 90 s/, Goim::Time::scaled(3)), 'TEST 6 - reloaded');
open $fh, '>', $conf or die; print $fh "session_ttl = -1;\n"; close $fh;
kill 'HUP', $d->pid;
Test::More::ok($d->wait_for_log(qr/reload failed, the running configuration stays/, Goim::Time::scaled(3)),
               'TEST 6 - a bad file is refused');
Test::More::is(main::stats($d->port)->{sessions}, 0, 'TEST 6 - still serving');
$d->stop;
--- request
GET /goim/online/total
--- response_body_like
"session_count":\d+\}\}$
