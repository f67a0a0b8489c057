# Logic.Nodes over RPC from an nginx with no http{} block: node selection
# is logic's core, so a stream-only logic answers with the nodes and the
# goim_logic_node_* defaults (goim's example ports and backoff, no domain).
use strict;
use warnings;

use Cwd qw(abs_path getcwd);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use Goim::Daemon;
use Goim::RouterRpc;
use Goim::Time;

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $objs = abs_path($ENV{GOIM_NGINX_OBJS} || 'build/nginx/objs');
my $run = getcwd() . '/t/servroot-nodes-stream';
remove_tree($run);
make_path("$run/logs");

my $router = Goim::Daemon->start('router');
my $rport = $ENV{TEST_NGINX_ROUTER_PORT};
my $lport = Goim::Daemon::free_port();

open my $fh, '>', "$run/nginx.conf" or die $!;
print $fh ($> == 0 ? "user root;\n" : ''), <<"_EOC_";
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $objs/ngx_goim_logic_module.so;
daemon off;
worker_processes 1;
error_log $run/logs/error.log info;
pid $run/nginx.pid;

goim_logic_router 127.0.0.1:$rport;
goim_logic_rpc_secret_file $ENV{GOIM_RPC_SECRET_FILE};
goim_logic_rpc_timeout @{[ int(Goim::Time::scaled(1)) ]}s;

events {}

stream {
    server {
        listen 127.0.0.1:$lport;
        goim_logic_rpc;
    }
}
_EOC_
close $fh;

my @cmd = ($nginx, '-p', "$run/", '-c', "$run/nginx.conf");
my $pid = fork // die;
if ($pid == 0) {
    open STDOUT, '>>', "$run/logs/stderr.log";
    open STDERR, '>>', "$run/logs/stderr.log";
    exec(@cmd) or POSIX::_exit(127);
}
my $up = Goim::Time::wait_until(sub {
    waitpid($pid, WNOHANG) != $pid
        && IO::Socket::INET->new(PeerAddr => "127.0.0.1:$lport", Timeout => 1);
}, 10, 0.05);
ok($up, 'nginx with only a stream{} block starts')
    or diag(`tail -5 $run/logs/error.log $run/logs/stderr.log`);

Goim::RouterRpc::comet_renew($rport, id => 'c1', weight => 10, conn_count => 100,
                             addrs => ['1.1.1.1']);
Goim::RouterRpc::comet_renew($rport, id => 'c2', weight => 10,
                             addrs => ['2.2.2.2', '2.2.2.3']);

my ($op, $body) = Goim::RouterRpc::call($lport, 106, Goim::RouterRpc::f_bytes(1, 'web'));
is($op, 106 | 0x40000000, 'a Nodes reply, not an error');
my @f = Goim::RouterRpc::decode($body // '');
my %one = map { $_->[0] == 6 ? () : @$_ } @f;
ok(!$one{1}, 'no domain');
is(join(' ', map { $one{$_} // '' } 2, 3, 4, 5, 8), '3101 3102 3103 240 2',
   'the default ports, heartbeat in seconds, heartbeat_max');
is(join(',', map { $_->[1] } grep { $_->[0] == 6 } @f), '2.2.2.2,2.2.2.3,1.1.1.1',
   'the empty comet first; no host domain: addresses for web clients too');
my %b = map { @$_ } Goim::RouterRpc::decode($one{7} // '');
is(sprintf('%d %d %.1f %.1f', @b{1 .. 4}), '300 3 1.8 0.3', 'the default backoff');

kill 'QUIT', $pid;
my $st;
Goim::Time::wait_until(sub {
    return 0 unless waitpid($pid, WNOHANG) == $pid;
    $st = $?;
    return 1;
}, 10, 0.05);
unless (defined $st) { kill 'KILL', $pid; waitpid $pid, 0; $st = -1 }
is($st, 0, 'nginx exits normally');

my $log = do { local (@ARGV, $/) = "$run/logs/error.log"; <> } // '';
unlike($log, qr/\[(?:error|alert|crit|emerg)\]/, 'no [error], [alert], [crit] in the log')
    or diag($log);

$router->stop;
done_testing();
