# The internal RPC plane is authenticated (docs/protocol.md,
# "Authentication"): every link between comet, logic, router and job runs
# the shared-secret handshake first.  A peer without the secret, with
# another one, with a forged proof, or silent, is refused with a logged
# reason, in each direction: comet -> logic, logic -> router,
# logic -> job, job -> router, job -> comet's push port.  A live comet's
# push address cannot be taken over by another CometRenew.  Without a
# secret a listener may only be a loopback one.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Daemon;
use Goim::RouterRpc;
use IO::Select;
use Time::HiRes qw(time sleep);

# waits, not bounds: how much longer things take under valgrind / ASan
our $Slow = ($ENV{GOIM_SANITIZE} || $ENV{TEST_NGINX_USE_VALGRIND}) ? 10 : 1;
our $Other = Goim::Daemon::write_secret("rpc-other-$$.secret");
$ENV{TEST_NGINX_OTHER_SECRET_FILE} = $Other;
END { unlink $Other if $Other }

sub router_stats {
    my $port = shift // $ENV{TEST_NGINX_ROUTER_PORT};
    my $bin = Goim::Daemon::build_dir() . '/goim-router';
    my %h = map { /^(\w+)=(-?\d+)$/ ? ($1, $2) : () }
            `$bin --stats 127.0.0.1:$port 2>/dev/null`;
    return \%h;
}

# true when the peer closes s within timeout seconds
sub closed {
    my ($s, $timeout) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + $timeout;
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread $s, my $buf, 4096;
        return 1 if !defined $n || $n == 0;
    }
    return 0;
}

# a peer without a secret: an RPC call straight away (method op, no body)
sub plain_call {
    my ($port, $op) = @_;
    my $s = Goim::RouterRpc::connect($port, secret_file => '');
    print $s Goim::RouterRpc::frame($op, 1, '');
    return closed($s, 5 * $Slow);
}

# a peer that does not know the secret and makes up its proof
sub forged_proof {
    my $port = shift;
    my $s = Goim::RouterRpc::connect($port, secret_file => '');
    my $nc = Goim::RouterRpc::nonce();
    print $s Goim::RouterRpc::frame(Goim::RouterRpc::AUTH_HELLO, 0, $nc);
    my $ch = Goim::RouterRpc::read_exact($s, 80, 5 * $Slow) // return 'no challenge';
    print $s Goim::RouterRpc::frame(Goim::RouterRpc::AUTH_PROOF, 0, Goim::RouterRpc::nonce());
    return closed($s, 5 * $Slow) ? 'closed' : 'open';
}

# a client with another secret: it refuses the server's proof itself
sub other_secret {
    my $port = shift;
    my $s = Goim::RouterRpc::connect($port, secret_file => '');
    eval { Goim::RouterRpc::authenticate($s, Goim::RouterRpc::secret($Other)) };
    (my $why = $@) =~ s/\s+$//;
    # it hangs up; the server's close says it has logged why
    shutdown $s, 1;
    closed($s, 5 * $Slow) or return "$why (and the server kept the connection)";
    return $why;
}

Goim::Stack::setup();

# this file's router: a handshake has 1 s
{
    my $port = $Goim::Stack::Router->port;
    $Goim::Stack::Router->stop;
    $Goim::Stack::Router = Goim::Daemon->start('router', name => 'router-auth', port => $port,
        args => ['--rpc-auth-timeout', 1000]);
}

our $Main = $Goim::Stack::MainConfig;

# the stack's config with other secrets: $comet and $logic are a file
# variable ('OTHER' for the second secret) or undef (no directive)
sub main_with {
    my ($comet, $logic) = @_;
    my $c = $Main;
    for ([goim_comet_rpc_secret_file => $comet], [goim_logic_rpc_secret_file => $logic]) {
        my ($d, $v) = @$_;
        my $line = defined $v ? "$d \$TEST_NGINX_${v}_SECRET_FILE;" : '';
        $c =~ s/\Q$d\E \$TEST_NGINX_RPC_SECRET_FILE;/$line/ or die "no $d in the stack's config\n";
    }
    return $c;
}

run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: the stack runs authenticated: comet, logic, router and job prove the secret to each other
--- init
Goim::Stack::client('a1', '{"mid":901,"room_id":"auth://1","accepts":[1000]}', 1);
Test::More::ok(Goim::Stack::push('/goim/push/mids?operation=1000&mids=901', 'signed', 1),
               'TEST 1 - push accepted');
--- request
GET /goim/online/total
--- response_body_like
^\{"code":0,"message":"","data":\{"conn_count":\d+,"ip_count":\d+,"session_count":\d+\}\}$
--- goim_receive
a1 op=1000 seq=0 ver=1 body=signed
--- error_log
goim rpc: connected to 127.0.0.1:
, authenticated
--- no_error_log
[error]
[alert]
[crit]
refusing



=== TEST 2: logic's RPC listener (comet -> logic) refuses an RPC call sent without the handshake
--- init
Test::More::ok(main::plain_call($ENV{TEST_NGINX_LOGIC_PORT}, 106), 'TEST 2 - closed');
--- request
GET /status
--- error_log eval
qr/\[warn\] .*goim rpc: refusing 127\.0\.0\.1: authentication failed: the peer sent another frame than the authentication one/
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: logic's RPC listener refuses a forged proof; a client with another secret refuses logic's
--- init
Test::More::is(main::forged_proof($ENV{TEST_NGINX_LOGIC_PORT}), 'closed', 'TEST 3 - forged proof: closed');
Test::More::is(main::other_secret($ENV{TEST_NGINX_LOGIC_PORT}), "RouterRpc: the server's proof is wrong",
               'TEST 3 - another secret: logic cannot prove it');
--- request
GET /status
--- error_log eval
[qr/goim rpc: refusing 127\.0\.0\.1: authentication failed: wrong proof of the RPC secret/,
 qr/goim rpc: refusing 127\.0\.0\.1: authentication failed: the peer closed the connection during the handshake/]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: comet's push listener (job -> comet) refuses a call without the handshake and a forged proof
--- init
Test::More::ok(main::plain_call($ENV{TEST_NGINX_PUSH_PORT}, 204), 'TEST 4 - Rooms() without a secret: closed');
Test::More::is(main::forged_proof($ENV{TEST_NGINX_PUSH_PORT}), 'closed', 'TEST 4 - forged proof: closed');
my $r = Goim::RouterRpc::connect($ENV{TEST_NGINX_PUSH_PORT});
print $r Goim::RouterRpc::frame(204, 5, '');
my ($op) = unpack 'x8 N', Goim::RouterRpc::read_exact($r, 16) // '';
Test::More::is($op, 204 | 0x40000000, 'TEST 4 - with the secret Rooms() answers');
--- request
GET /status
--- response_body_like
"rpc_auth_refused":2\}
--- error_log eval
[qr/goim rpc: refusing 127\.0\.0\.1: authentication failed: the peer sent another frame/,
 qr/goim rpc: refusing 127\.0\.0\.1: authentication failed: wrong proof/]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: a peer that sends nothing is closed after goim_logic_rpc_auth_timeout
--- main_config eval
# short, but long enough for comet's own handshake with logic under valgrind
my $ms = 300 * $main::Slow;
my $c = $main::Main;
$c =~ s/(goim_comet_id comet-test;)/$1\n    goim_logic_rpc_auth_timeout ${ms}ms;/;
$c
--- init
my $s = Goim::RouterRpc::connect($ENV{TEST_NGINX_LOGIC_PORT}, secret_file => '');
Test::More::ok(main::closed($s, 10 * $main::Slow), 'TEST 5 - the silent peer was closed');
--- request
GET /status
--- error_log eval
"goim rpc: refusing 127.0.0.1: no handshake within " . (300 * $main::Slow) . " ms"
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: comet -> logic with another secret: comet refuses logic's proof, the client's login fails
--- main_config eval
main::main_with('OTHER', 'RPC')
--- init
my $c = Goim::Stack::client('w1', '{"mid":902,"room_id":"auth://1","accepts":[1000]}', 1);
--- request
GET /status
--- response_body_like chomp
"rpc":\{"link_resets":0,"link_auth_failed":[1-9]\d*,
--- goim_auth
w1 none
--- goim_closed
w1
--- error_log eval
[qr/\[error\] .*goim rpc: authentication with 127\.0\.0\.1:\d+ failed: wrong proof of the RPC secret/,
 qr/goim rpc: refusing 127\.0\.0\.1: authentication failed: the peer closed the connection during the handshake/]
--- no_error_log
[alert]
[crit]



=== TEST 7: comet -> logic without a secret on comet's side: logic refuses its calls
--- main_config eval
main::main_with(undef, 'RPC')
--- init
my $c = Goim::Stack::client('n1', '{"mid":903,"room_id":"auth://1","accepts":[1000]}', 1);
--- request
GET /status
--- goim_auth
n1 none
--- goim_closed
n1
--- error_log eval
qr/goim rpc: refusing 127\.0\.0\.1: authentication failed: the peer sent another frame/
--- no_error_log
[alert]
[crit]



=== TEST 8: logic -> router and logic -> job with another secret: logic refuses their proofs, the API answers 503
--- main_config eval
main::main_with('OTHER', 'OTHER')
--- init
Test::More::is(Goim::Stack::push('/goim/push/all?operation=1000', 'x', 1), 0,
               'TEST 8 - the push is not accepted: job is not reachable');
--- request
GET /goim/online/total
--- error_code: 503
--- error_log eval
[qr/\[error\] .*goim rpc: authentication with 127\.0\.0\.1:$ENV{TEST_NGINX_ROUTER_PORT} failed: wrong proof/,
 qr/\[error\] .*goim rpc: authentication with 127\.0\.0\.1:$ENV{TEST_NGINX_JOB_PORT} failed: wrong proof/]
--- no_error_log
[alert]
[crit]



=== TEST 9: logic -> router and logic -> job without a secret on logic's side: router and job refuse
--- main_config eval
main::main_with(undef, undef)
--- init
my $router = $Goim::Stack::Router;
my $job = $Goim::Stack::Job;
Test::More::is(Goim::Stack::push('/goim/push/all?operation=1000', 'x', 1), 0,
               'TEST 9 - the push is not accepted');
Test::More::ok($router->wait_for_log(qr/\[warn\] .*rpc: refusing 127\.0\.0\.1:\d+: authentication failed: the peer sent another frame/, 5 * $main::Slow),
               'TEST 9 - router logged why it refused logic');
Test::More::ok($job->wait_for_log(qr/\[warn\] .*rpc: refusing 127\.0\.0\.1:\d+: authentication failed: the peer sent another frame/, 5 * $main::Slow),
               'TEST 9 - job logged why it refused logic');
--- request
GET /goim/online/total
--- error_code: 503
--- error_log eval
qr/goim rpc: 127\.0\.0\.1:$ENV{TEST_NGINX_ROUTER_PORT} closed the connection/
--- no_error_log
[alert]
[crit]



=== TEST 10: job -> router with another secret, and without one: each side says why
--- init
my $router = $Goim::Stack::Router;
my $other = Goim::Daemon->start('job', name => 'job-other-secret', no_env => 1,
                                args => ['--rpc-secret-file', $main::Other, '--comet-refresh', 1]);
Test::More::ok($other->wait_for_log(qr/\[warn\] .*rpc: 127\.0\.0\.1:$ENV{TEST_NGINX_ROUTER_PORT}: authentication refused: wrong proof of the RPC secret/, 5 * $main::Slow),
               'TEST 10 - a job with another secret refuses the router');
Test::More::ok($router->wait_for_log(qr/rpc: refusing 127\.0\.0\.1:\d+: authentication failed: it closed the connection first/, 5 * $main::Slow),
               'TEST 10 - and the router logs the broken handshake');
$other->wait_for_log(qr/goim-job started/, 5 * $main::Slow);
$other->stop;
my $none = Goim::Daemon->start('job', name => 'job-no-secret', no_env => 1,
                               env => {GOIM_RPC_SECRET_FILE => ''}, args => ['--comet-refresh', 1]);
Test::More::ok($router->wait_for_log(qr/rpc: refusing 127\.0\.0\.1:\d+: authentication failed: the peer sent another frame/, 5 * $main::Slow),
               'TEST 10 - a job without a secret is refused by the router');
Test::More::ok($none->wait_for_log(qr/no rpc_secret_file: the RPC plane is unauthenticated/, 1),
               'TEST 10 - and warned at start that its plane is open');
# its SIGTERM handler is set once it says it started (it listens before)
$none->wait_for_log(qr/goim-job started/, 5 * $main::Slow);
$none->stop;
--- request
GET /status
--- no_error_log
[error]
[alert]
[crit]



=== TEST 11: job -> comet's push port with another secret: job refuses comet's proof, comet logs the broken handshake
--- init
# a router and a job of another plane (the other secret), which lists
# the test comet's push port
my %other = (secret_file => $main::Other);
my $r2 = Goim::Daemon->start('router', name => 'router-other', no_env => 1,
                             args => ['--rpc-secret-file', $main::Other]);
Test::More::is(Goim::RouterRpc::comet_renew_reply($r2->port, id => 'comet-test',
                   push_addr => "127.0.0.1:$ENV{TEST_NGINX_PUSH_PORT}", %other),
               306 | 0x40000000, 'TEST 11 - the other router lists the comet');
my $j2 = Goim::Daemon->start('job', name => 'job-to-comet', no_env => 1, router => $r2->addr,
                             args => ['--rpc-secret-file', $main::Other]);
Test::More::ok($j2->wait_for_log(qr/comet comet-test at 127\.0\.0\.1:$ENV{TEST_NGINX_PUSH_PORT}/, 5 * $main::Slow),
               'TEST 11 - the other job knows the comet');
# Job.Push: one broadcast record
my $msg = Goim::RouterRpc::f_varint(1, 2) . Goim::RouterRpc::f_varint(2, 1000)
        . Goim::RouterRpc::f_bytes(7, 'x');
# job answers once the comets did: here never, it keeps trying
my $push = Goim::RouterRpc::connect($j2->port, %other);
print $push Goim::RouterRpc::frame(401, 1, Goim::RouterRpc::f_bytes(1, $msg));
Test::More::ok($j2->wait_for_log(qr/rpc: 127\.0\.0\.1:$ENV{TEST_NGINX_PUSH_PORT}: authentication refused: wrong proof of the RPC secret/, 5 * $main::Slow),
               'TEST 11 - and refuses the comet: it cannot prove the other secret');
# stopping with that push still retrying exits cleanly (it crashed:
# the drain finished before its timer existed)
$j2->stop;
$r2->wait_for_log(qr/goim-router started/, 5 * $main::Slow);
$r2->stop;
--- request
GET /status
--- error_log
goim rpc: refusing 127.0.0.1: authentication failed: the peer closed the connection during the handshake
--- no_error_log
[error]
[alert]
[crit]



=== TEST 12: router closes a peer that sends nothing after rpc_auth_timeout, and counts it
--- init
my $before = main::router_stats()->{rpc_auth_refused} // -1;
my $s = Goim::RouterRpc::connect($ENV{TEST_NGINX_ROUTER_PORT}, secret_file => '');
Test::More::ok(main::closed($s, 10 * $main::Slow), 'TEST 12 - the silent peer was closed');
Test::More::ok($Goim::Stack::Router->wait_for_log(qr/refusing 127\.0\.0\.1:\d+: authentication failed: no handshake within 1000 ms/, 1),
               'TEST 12 - with the reason logged');
Test::More::is(main::router_stats()->{rpc_auth_refused}, $before + 1, 'TEST 12 - and counted');
Test::More::ok(main::plain_call($ENV{TEST_NGINX_ROUTER_PORT}, 312), 'TEST 12 - Stats() without a secret: closed');
Test::More::is(main::forged_proof($ENV{TEST_NGINX_ROUTER_PORT}), 'closed', 'TEST 12 - forged proof: closed');
Test::More::ok($Goim::Stack::Router->wait_for_log(qr/refusing 127\.0\.0\.1:\d+: authentication failed: wrong proof/, 1),
               'TEST 12 - forged proof logged');
Test::More::is(main::router_stats()->{rpc_auth_refused}, $before + 3, 'TEST 12 - three refused');
--- request
GET /status
--- no_error_log
[error]
[alert]
[crit]



=== TEST 13: a live comet's push address cannot be taken over; the same address renews; a new one is taken after expiry
--- init
# a router of its own: registrations expire 2 s after their last renewal
my $router = Goim::Daemon->start('router', name => 'router-takeover', no_env => 1,
                                 args => ['--comet-ttl', 2]);
my $port = $router->port;
my $ok = 306 | 0x40000000;
Test::More::is(Goim::RouterRpc::comet_renew_reply($port, id => 'comet-owned', push_addr => '127.0.0.1:7001'),
               $ok, 'TEST 13 - registered');
Test::More::is(Goim::RouterRpc::comet_renew_reply($port, id => 'comet-owned', push_addr => '127.0.0.1:7666'),
               306 | 0x20000000, 'TEST 13 - another push address for the live id: an error reply');
Test::More::ok($router->wait_for_log(qr/\[warn\] .*comet comet-owned: refusing a renewal with push address 127\.0\.0\.1:7666: it is live at 127\.0\.0\.1:7001/, 1),
               'TEST 13 - logged');
Test::More::is(main::router_stats($port)->{comet_takeovers_refused}, 1, 'TEST 13 - counted');
my ($op, $body) = Goim::RouterRpc::call($port, 308, '');
Test::More::like($body // '', qr/comet-owned.{2}127\.0\.0\.1:7001/s, 'TEST 13 - job still gets the first address');
Test::More::unlike($body // '', qr/7666/, 'TEST 13 - and never the second');
Test::More::is(Goim::RouterRpc::comet_renew_reply($port, id => 'comet-owned', push_addr => '127.0.0.1:7001'),
               $ok, 'TEST 13 - the same address renews');
Test::More::ok($router->wait_for_log(qr/comet comet-owned expired/, 10 * $main::Slow), 'TEST 13 - it expires');
Test::More::is(Goim::RouterRpc::comet_renew_reply($port, id => 'comet-owned', push_addr => '127.0.0.1:7666'),
               $ok, 'TEST 13 - then another address may register the id');
$router->wait_for_log(qr/goim-router started/, 5 * $main::Slow);
$router->stop;
--- request
GET /status
--- no_error_log
[error]
[alert]
[crit]



=== TEST 14: daemons: loopback by default; a non-loopback listen without a secret is a config error; a secret others can read too
--- init
my $bin = Goim::Daemon::build_dir();
my %port = (router => 3139, job => 3129);
for my $d (qw(router job)) {
    Test::More::like(scalar `$bin/goim-$d --help`, qr/--listen .*\(default 127\.0\.0\.1:$port{$d}\)/,
                     "TEST 14 - goim-$d listens on loopback by default");
    my $out = `GOIM_RPC_SECRET_FILE= $bin/goim-$d --listen 0.0.0.0:3 -t 2>&1`;
    Test::More::is($? >> 8, 1, "TEST 14 - goim-$d: exit 1");
    Test::More::like($out, qr/^goim-$d: listen: "0\.0\.0\.0:3" is not a loopback address and no rpc_secret_file is set[^\n]*\n\z/,
                     "TEST 14 - goim-$d: one line says why");
    $out = `$bin/goim-$d --listen 0.0.0.0:3 -t 2>&1`;
    Test::More::is($? >> 8, 0, "TEST 14 - goim-$d: with a secret it may listen on any address") or Test::More::diag($out);
}
my $open = Goim::Daemon::write_secret("rpc-open-$$.secret");
chmod 0644, $open;
my $out = `$bin/goim-router --rpc-secret-file $open -t 2>&1`;
Test::More::is($? >> 8, 1, 'TEST 14 - a world-readable secret: exit 1');
Test::More::like($out, qr/^goim-router: rpc_secret_file: the RPC secret file "[^"]+" is accessible by others \(mode 644\)/,
                 'TEST 14 - and why');
unlink $open;
--- request
GET /status
--- no_error_log
[error]
[alert]
[crit]



=== TEST 15: nginx: comet's push listener on a non-loopback address without a secret is refused
--- main_config eval
my $c = main::main_with(undef, 'RPC');
$c =~ s/listen 127\.0\.0\.1:\$TEST_NGINX_PUSH_PORT;/listen 0.0.0.0:\$TEST_NGINX_PUSH_PORT;/ or die;
$c
--- must_die
--- error_log eval
qr/\[emerg\] .*goim_comet_push listens on 0\.0\.0\.0:\d+, not a loopback address, and no goim_comet_rpc_secret_file is set/



=== TEST 16: nginx: logic's RPC listener on a non-loopback address without a secret is refused
--- main_config eval
my $c = main::main_with('RPC', undef);
$c =~ s/listen 127\.0\.0\.1:\$TEST_NGINX_LOGIC_PORT;/listen 0.0.0.0:\$TEST_NGINX_LOGIC_PORT;/ or die;
$c
--- must_die
--- error_log eval
qr/\[emerg\] .*goim_logic_rpc listens on 0\.0\.0\.0:\d+, not a loopback address, and no goim_logic_rpc_secret_file is set/



=== TEST 17: nginx: a secret file others may read is refused, with its file and line
--- main_config eval
my $open = Goim::Daemon::write_secret("rpc-open-nginx-$$.secret");
chmod 0644, $open;
$ENV{TEST_NGINX_OPEN_SECRET_FILE} = $open;
main::main_with('OPEN', 'RPC')
--- must_die
--- error_log eval
qr/\[emerg\] .*the RPC secret file "[^"]+" is accessible by others \(mode 644\): chmod o-rwx it in .*nginx\.conf:\d+/
