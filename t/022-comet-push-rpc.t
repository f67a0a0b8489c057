# comet's push RPC listener (goim_comet_push) under a peer that misbehaves:
# pipelined pushes reach a reading client without drops (frames handled
# per read event are bounded, so client writes interleave), a peer that
# reads no replies is no longer read (memory stays bounded), oversize and
# unfinished frames close the connection with a logged reason.  And
# comet's own link to a logic that stopped answering is reset.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Log;
use Goim::PushRpc;
use Goim::RouterRpc;
use IO::Socket::INET;

use constant REPLY => 0x40000000;

# writes to a connection the server closed must fail, not kill the test
$SIG{PIPE} = 'IGNORE';

# valgrind runs nginx tens of times slower: waits scale with it
our $Slow = $ENV{TEST_NGINX_USE_VALGRIND} || $ENV{GOIM_SANITIZE} ? 10 : 1;

# the resident memory of the nginx process serving the test (one process,
# no master, as Test::Nginx runs it by default), in kB
sub rss {
    my $pidf = Test::Nginx::Socket::server_root() . '/logs/nginx.pid';
    open my $fh, '<', $pidf or die "$pidf: $!\n";
    chomp(my $pid = <$fh>);
    open my $st, '<', "/proc/$pid/status" or die "/proc/$pid/status: $!\n";
    while (<$st>) { return $1 if /^VmRSS:\s+(\d+)/ }
    die "no VmRSS for $pid\n";
}

# a "logic" that accepts (the kernel does) but never answers, for TEST 7
our $Silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                    Listen => 64, ReuseAddr => 1) or die "listen: $!\n";

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: 500 pipelined pushes in one write all reach a reading client, none dropped
--- init
my $c = Goim::Stack::client('burst', '{"mid":1,"key":"burst-key","accepts":[1000]}', 1);
my $s = Goim::PushRpc::connect();
Goim::PushRpc::write_all($s, join '', map { Goim::PushRpc::push_msg($_, 'burst-key', "m$_") } 1 .. 500);
my @r = Goim::PushRpc::read_frames($s, 500, 5 * $main::Slow);
my ($delivered, $dropped) = (0, 0);
for my $f (@r) {
    my %m = map { $_->[0] => $_->[1] } Goim::RouterRpc::decode($f->[2]);
    $delivered += $m{1} // 0;
    $dropped += $m{2} // 0;
}
Test::More::is(scalar @r, 500, 'TEST 1 - 500 PushMsg replies');
Test::More::is("$delivered/$dropped", '500/0', 'TEST 1 - delivered/dropped over the replies');
my @got;
while (@got < 500) {
    my $p = $c->read_packet(3 * $main::Slow) or last;
    push @got, $p->{body};
}
Test::More::is(scalar @got, 500, 'TEST 1 - the client got 500 pushes');
Test::More::is(join(',', @got), join(',', map { "m$_" } 1 .. 500), 'TEST 1 - in order');
close $s;
--- request
GET /status
--- response_body_like chomp
"dropped":0,
--- no_error_log
push dropped
[error]
[alert]
[crit]



=== TEST 2: a peer that reads no replies is no longer read: memory stays bounded, every reply comes once it reads
--- init
# 20 rooms of 3000-byte names: each Rooms() reply is about 60 kB
for my $i (1 .. 20) {
    Goim::Stack::client("r$i", '{"mid":' . (100 + $i) . ',"key":"r' . $i
        . '","room_id":"live://' . ('x' x 3000) . $i . '","accepts":[1000]}', 1);
}
my $s = Goim::PushRpc::connect(rcvbuf => 4096);
my $before = main::rss();
# 1000 calls (16 kB) ask for 60 MB of replies
Goim::PushRpc::write_all($s, join '', map { Goim::RouterRpc::frame(204, $_, '') } 1 .. 1000);
Test::More::ok(Goim::Log::wait_for(qr/reads no replies \(\d+ bytes unsent\), reading from it stops/, 10 * $main::Slow),
               'TEST 2 - reading stopped');
my $grew = main::rss() - $before;
Test::More::diag("TEST 2: the worker grew by $grew kB while the peer did not read");
# valgrind's shadow memory about doubles what the worker takes
Test::More::cmp_ok($grew, '<', ($main::Slow > 1 ? 32 : 16) * 1024,
                   'TEST 2 - the worker grew by less than 16 MB (not 60)');
my @r = Goim::PushRpc::read_frames($s, 1000, 5 * $main::Slow);
Test::More::is(scalar(grep { $_->[0] == (204 | main::REPLY) && length $_->[2] > 60000 } @r), 1000,
               'TEST 2 - then all 1000 replies came');
Test::More::is(join(',', map { $_->[1] } @r), join(',', 1 .. 1000), 'TEST 2 - in order');
close $s;
--- request
GET /status
--- response_body_like chomp
"rooms":20,"rpc":\{"link_resets":0,"link_auth_failed":0,"sessions_paused":[1-9]\d*\},



=== TEST 3: a frame announcing more than max_frame (4m by default) closes the connection at once
--- init
my $s = Goim::PushRpc::connect();
Goim::PushRpc::write_all($s, pack('N n n N N', 16 + 5 * 1024 * 1024, 16, 1, 204, 1) . 'x' x 1000);
Test::More::ok(Goim::PushRpc::closed_within($s, 3 * $main::Slow), 'TEST 3 - closed');
--- request
GET /status
--- response_body_like chomp
"bad_input":1[,}]
--- error_log eval
qr/goim rpc: bad frame from 127\.0\.0\.1: .*too large/
--- no_error_log
[alert]
[crit]



=== TEST 4: a frame not complete within frame_timeout closes its connection; an idle one stays
--- main_config eval
(my $c = $Goim::Stack::MainConfig) =~ s/goim_comet_push;/goim_comet_push max_frame=64k frame_timeout=300ms;/;
$c
--- init
my $idle = Goim::PushRpc::connect();
my $half = Goim::PushRpc::connect();
Goim::PushRpc::write_all($half, substr(Goim::PushRpc::push_msg(1, 'k', 'y' x 5000), 0, 3000));
Test::More::ok(Goim::PushRpc::closed_within($half, 3 * $main::Slow), 'TEST 4 - the half-sent frame was closed');
Goim::PushRpc::write_all($idle, Goim::RouterRpc::frame(204, 7, ''));
my @r = Goim::PushRpc::read_frames($idle, 1, 3 * $main::Slow);
Test::More::is(scalar(@r) && $r[0][0] == (204 | main::REPLY) ? 'reply' : 'none', 'reply',
               'TEST 4 - the idle connection still answers');
close $idle;
--- request
GET /status
--- response_body_like chomp
"bad_input":1[,}]
--- error_log eval
qr/goim rpc: closing 127\.0\.0\.1: a frame was not complete within 300 ms/
--- no_error_log
[alert]
[crit]



=== TEST 5: a frame trickled in pieces, each within frame_timeout but not all, is closed too
--- main_config eval
(my $c = $Goim::Stack::MainConfig) =~ s/goim_comet_push;/goim_comet_push frame_timeout=500ms;/;
$c
--- init
my $s = Goim::PushRpc::connect();
my $f = Goim::PushRpc::push_msg(1, 'k', 'z' x 4000);
my $closed = 0;
# 50 bytes every 100 ms: each piece well within the timeout, the frame not
for (my $i = 0; !$closed && $i < length($f) - 50; $i += 50) {
    $closed = !defined(syswrite $s, substr($f, $i, 50)) || Goim::PushRpc::closed_within($s, 0.1);
}
Test::More::ok($closed || Goim::PushRpc::closed_within($s, 3 * $main::Slow), 'TEST 5 - closed before the frame was');
--- request
GET /status
--- response_body_like chomp
"online":0}
--- error_log eval
qr/a frame was not complete within 500 ms/
--- no_error_log
[alert]
[crit]



=== TEST 6: bad listener parameters stop nginx with one line
--- main_config eval
(my $c = $Goim::Stack::MainConfig) =~ s/goim_comet_push;/goim_comet_push max_frame=10;/;
$c
--- must_die
--- error_log
max_frame must be 1k to 1g



=== TEST 7: comet's link to a logic that accepts but never answers is reset after 3 timeouts; auths then fail at once
--- main_config eval
(my $c = $Goim::Stack::MainConfig) =~ s/\n\s*goim_comet_rpc_timeout [^;]+;//;
$c =~ s/goim_comet_logic [^;]+;/goim_comet_logic 127.0.0.1:@{[ $main::Silent->sockport ]};
    goim_comet_rpc_timeout 300ms;
    goim_comet_rpc_retry 30s;/;
$c
--- init
my @c = map { Goim::Stack::client("s$_", '{"mid":' . (300 + $_) . ',"key":"s' . $_ . '"}', 1) } 1 .. 3;
Test::More::is(join(' ', map { defined $_->{auth} ? 'reply' : 'none' } @Goim::Stack::Clients{qw(s1 s2 s3)}),
               'none none none', 'TEST 7 - three auths got no answer');
Test::More::ok(Goim::Log::wait_for(qr/goim rpc: closing the connection to 127\.0\.0\.1:\d+ \(upstream is not answering\), calls fail for 30000 ms/, 5 * $main::Slow),
               'TEST 7 - the link to logic was reset');
my $late = Goim::Stack::client('s4', '{"mid":304,"key":"s4"}', 1);
Test::More::ok($late->wait_closed(3 * $main::Slow), 'TEST 7 - a later client is closed');
Test::More::ok(Goim::Log::wait_for(qr/auth refused by logic: upstream is down/, 3 * $main::Slow), 'TEST 7 - at once: logic is known down');
--- request
GET /status
--- response_body_like chomp
"online":0\},"rooms":0,"rpc":\{"link_resets":1,
--- error_log eval
qr/goim rpc: \d+ calls to 127\.0\.0\.1:\d+ in a row timed out/
--- no_error_log
[alert]
[crit]



=== TEST 8: a key given several times in one PushMsg is pushed to once
--- init
my $c = Goim::Stack::client('dup', '{"mid":401,"key":"dup-key","accepts":[1000]}', 1);
my $s = Goim::PushRpc::connect();
# keys: dup-key three times and a key nobody holds; then one more push
my $keys = join '', map { Goim::RouterRpc::f_bytes(1, $_) } qw(dup-key dup-key nobody dup-key);
Goim::PushRpc::write_all($s, Goim::RouterRpc::frame(201, 1,
    $keys . Goim::RouterRpc::f_bytes(2, Goim::PushRpc::proto('once'))
    . Goim::RouterRpc::f_varint(3, 1000)));
Goim::PushRpc::write_all($s, Goim::PushRpc::push_msg(2, 'dup-key', 'next'));
my @r = Goim::PushRpc::read_frames($s, 2, 5 * $main::Slow);
my %m = map { $_->[0] => $_->[1] } Goim::RouterRpc::decode($r[0][2] // '');
Test::More::is($m{1} // 0, 1, 'TEST 8 - the reply says delivered to 1 key');
my @got;
while (@got < 2) {
    my $p = $c->read_packet(3 * $main::Slow) or last;
    push @got, $p->{body};
}
Test::More::is(join(',', @got), 'once,next', 'TEST 8 - the client got the push once, then the next one');
close $s;
--- request
GET /status
--- response_body_like chomp
"dropped":0,
--- no_error_log
[error]
[alert]
[crit]
