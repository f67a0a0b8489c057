# `make run`'s nginx.conf (scripts/nginx.conf.in, filled in as
# scripts/run.sh does, goim's ports moved to free ones): nginx accepts it,
# and it serves the demo page and goim.js with the types a browser needs
# for an ES module, and comet's SSE, long-poll and control-call locations
# on the same origin (the demo's transports).  It is safe by default: the internal listeners are on
# loopback, the RPC plane has a secret, the push API and the status pages
# answer 127.0.0.1 only.
use strict;
use warnings;

use Cwd qw(getcwd);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use Goim::Daemon;

my $top = getcwd();
my $build = "$top/build";    # as scripts/run.sh: the modules are always built there
my $nginx = $ENV{TEST_NGINX_BINARY} // '/usr/sbin/nginx';
my $run = "$top/t/servroot-runconf";
remove_tree($run);
make_path("$run/tmp");

my $conf = do { local (@ARGV, $/) = "$top/scripts/nginx.conf.in"; <> };
my $runsh = do { local (@ARGV, $/) = "$top/scripts/run.sh"; <> };

# the sample's exposure: what a browser or client may reach, and no more
for my $loc ('/goim/', '/1/', '= /logic-status', '= /status') {
    my ($body) = $conf =~ /location \Q$loc\E \{(.*?)\}/s;
    like($body // '', qr/allow 127\.0\.0\.1;\s+deny all;/, "location $loc answers 127.0.0.1 only");
}
for my $d ('goim_comet_push', 'goim_logic_rpc') {
    like($conf, qr/listen 127\.0\.0\.1:\d+;\s+\Q$d\E;/, "$d listens on loopback");
}
for my $d ('goim_comet_rpc_secret_file', 'goim_logic_rpc_secret_file') {
    like($conf, qr/^\Q$d\E \@RUN\@\/rpc\.secret;/m, "$d is set");
}
# the demo page asks for room positions (recover: true): the conf keeps a
# history for it to resume from
like($conf, qr/^goim_comet_room_history [1-9]\d*;/m, 'goim_comet_room_history is set (the demo resumes rooms)');
for my $d ('goim-router', 'goim-job') {
    like($runsh, qr/"\$BUILD\/$d" --listen 127\.0\.0\.1:\d+ [^\n]*(?:\\\n[^\n]*)?--rpc-secret-file "\$SECRET"/,
         "run.sh starts $d on loopback with the secret");
}
Goim::Daemon::write_secret('runconf.secret');
rename "$Goim::Daemon::LogDir/runconf.secret", "$run/rpc.secret" or die "rpc.secret: $!\n";
my %port;
$conf =~ s{\b(31\d\d)\b}{$port{$1} //= Goim::Daemon::free_port()}ge;
$conf =~ s/\@BUILD\@/$build/g;
$conf =~ s/\@RUN\@/$run/g;
$conf =~ s/\@TOP\@/$top/g;
$conf =~ s/^error_log .*$/error_log $run\/error.log info;/m;
$conf = "user root;\n$conf" if $> == 0;
open my $fh, '>', "$run/nginx.conf" or die $!;
print $fh $conf;
close $fh;

ok($port{3111} && $port{3101} && $port{3102}, 'the API, TCP and WebSocket ports are in the template');
my @cmd = ($nginx, '-p', "$run/", '-c', "$run/nginx.conf");
is(system("@cmd -t -q 2>$run/t.log"), 0, 'nginx -t accepts it') or diag(`cat $run/t.log`);

my $pid = fork // die;
if ($pid == 0) {
    open STDOUT, '>>', "$run/stderr.log";
    open STDERR, '>>', "$run/stderr.log";
    exec(@cmd) or POSIX::_exit(127);
}
my $deadline = time + 10;
until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port{3111}", Timeout => 1)) {
    if (time > $deadline || waitpid($pid, WNOHANG) == $pid) {
        fail('nginx starts');
        diag(`tail -5 $run/error.log $run/stderr.log`);
        done_testing();
        exit 1;
    }
    sleep 0.05;
}

sub get {
    my $path = shift;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port{3111}", Timeout => 3) or return '';
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    return <$s> // '';
}

for my $t (['/demo/', 'text/html', qr/<title>ngx_goim demo/],
           ['/demo/demo.js', 'text/javascript', qr/from '\.\/goim\.js'/],
           ['/demo/demo.css', 'text/css', qr/--accent/],
           ['/demo/goim.js', 'text/javascript', qr/export class GoimClient/]) {
    my ($path, $type, $body) = @$t;
    my $r = get($path);
    like($r, qr{\AHTTP/1\.1 200 .*^Content-Type: \Q$type\E\r?$}ms, "$path is served as $type");
    like($r, $body, "$path is the right file");
}

# the demo page's SSE, long-poll and control-call URLs, on its own origin
# (goim.js reaches them with fetch(): no CORS): comet answers there
for my $t (['/sse', '401', qr/"code":-401,"message":"no token/],
           ['/poll', '401', qr/"code":-401,"message":"no token/],
           ['/sse/control', '405', qr/"code":-405,/]) {
    my ($path, $status, $body) = @$t;
    my $r = get($path);
    like($r, qr{\AHTTP/1\.1 $status }, "$path on the demo's origin is comet's ($status without a token or a POST)");
    like($r, $body, "$path answers goim's envelope");
}

kill 'QUIT', $pid;
$deadline = time + 10;
my $st;
while (time < $deadline) { if (waitpid($pid, WNOHANG) == $pid) { $st = $?; last } sleep 0.05 }
unless (defined $st) { kill 'KILL', $pid; waitpid $pid, 0; $st = -1 }
is($st, 0, 'nginx exits normally');
done_testing();
