# The demo page and the JavaScript client in a real browser: Debian's
# chromium, headless, driven by playwright-core (t/browser/demo.mjs).  A
# prove-run TAP script, not a block file: one browser session runs through
# connect, a room push from the page's form, a mid push, the online count,
# a screenshot (t/servroot-browser/demo.png), a reconnect after
# `nginx -s reload` (which needs a master process of its own), change
# room, sub and unsub, goim's own client.js protocol handling, and an
# ensure push (ensure=1) sent while the page is disconnected, which must
# arrive exactly once when it reconnects (the demo acknowledges: ack: true),
# and room recovery (the demo asks for positions: recover: true; the comet
# here keeps goim_comet_room_history 1000): room messages pushed while the
# page is disconnected come once each and in order when it reconnects, when
# it changes back to a room, and after a reload of the page.  Then the
# page over /subz (goim_comet_ws_deflate on): chromium negotiates
# permessage-deflate itself and goim.js gets compressed pushes whole.  Last,
# t/browser/sse.mjs: chromium's EventSource on goim_comet_sse, its control
# calls, and its own reconnect with Last-Event-ID after a reload.  Then
# t/browser/transports.mjs: the demo page forced onto each of goim.js's
# transports (WebSocket, SSE, long-poll) and 'auto' falling back from a
# blocked WebSocket to SSE, and from both to long-poll.  The long-poll parts
# need goim_comet_poll: the /poll location is there when the module has the
# directive, and transports.mjs skips them when it is not.
use strict;
use warnings;

use Cwd qw(getcwd);
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use Goim::Daemon;
use Goim::Time;

my $top = getcwd();
my $chromium = $ENV{GOIM_CHROMIUM} // '/usr/bin/chromium';
# missing pieces fail the run (make test installs both); GOIM_SKIP_BROWSER=1
# skips it on purpose
plan skip_all => 'GOIM_SKIP_BROWSER is set' if $ENV{GOIM_SKIP_BROWSER};
for my $missing (-x $chromium ? () : "$chromium (scripts/install-deps.sh installs Debian's chromium)",
                 -d "$top/node_modules/playwright-core" ? ()
                 : 'node_modules/playwright-core (make test runs npm ci)') {
    fail("the browser test needs $missing");
    done_testing();
    exit 1;
}

my $nginx = $ENV{TEST_NGINX_BINARY} // '/usr/sbin/nginx';

# long-poll (goim_comet_poll) where the comet module has it
my $has_poll = grep {
    open my $so, '<', $_ or next;
    binmode $so;
    local $/;
    my $bytes = <$so>;
    $bytes =~ /goim_comet_poll\0/;
} split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
my $poll = $has_poll ? "location = /poll { goim_comet_poll; }" : '';
my $dir = "$top/t/servroot-browser";
remove_tree($dir);
make_path("$dir/logs", "$dir/conf", "$dir/tmp");

my $router = Goim::Daemon->start('router');
my $job = Goim::Daemon->start('job');
my ($comet, $push, $logic, $http) = map { Goim::Daemon::free_port() } 1 .. 4;

my $modules = join '', map { "load_module $_;\n" } split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '';
my $user = $> == 0 ? "user root;\n" : '';
my $conf = <<"_EOC_";
$modules$user
daemon off;
master_process on;
worker_processes 2;
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;

events { worker_connections 256; }

goim_comet_id comet-browser;
goim_comet_rpc_secret_file $ENV{GOIM_RPC_SECRET_FILE};
goim_logic_rpc_secret_file $ENV{GOIM_RPC_SECRET_FILE};
goim_comet_logic 127.0.0.1:$logic;
# room recovery for the demo's recover: true, as make run's conf has it
goim_comet_room_history 1000;
goim_logic_router 127.0.0.1:$ENV{TEST_NGINX_ROUTER_PORT};
goim_logic_job 127.0.0.1:$ENV{TEST_NGINX_JOB_PORT};

stream {
    server { listen 127.0.0.1:$comet; goim_comet; }
    server { listen 127.0.0.1:$push; goim_comet_push; }
    server { listen 127.0.0.1:$logic; goim_logic_rpc; }
}

http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp;

    server {
        listen 127.0.0.1:$http;

        location = /sub { goim_comet_ws; }
        location = /subz { goim_comet_ws; goim_comet_ws_deflate on; }
        location = /sse { goim_comet_sse; }
        location = /sse/control { goim_comet_sse_control; }
        $poll
        location /goim/ { goim_logic_api; }
        location = /status { goim_comet_status; }

        location /demo/ {
            alias $top/clients/demo/;
            types { text/html html; text/css css; text/javascript js; }
        }

        location = /demo/goim.js {
            alias $top/clients/js/goim.js;
            default_type text/javascript;
        }
    }
}
_EOC_

open my $fh, '>', "$dir/conf/nginx.conf" or die $!;
print $fh $conf;
close $fh;

my @nginx = ($nginx, '-p', "$dir/", '-c', "$dir/conf/nginx.conf");
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>>', "$dir/logs/stderr.log";
    open STDERR, '>>', "$dir/logs/stderr.log";
    exec(@nginx) or POSIX::_exit(127);
}

my $deadline = time + Goim::Time::scaled(10);
until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$http", Timeout => 1)) {
    BAIL_OUT("nginx did not start: " . `tail -5 $dir/logs/error.log`)
        if time > $deadline || waitpid($pid, WNOHANG) == $pid;
    sleep 0.05;
}

$ENV{BASE} = "http://127.0.0.1:$http";
$ENV{RELOAD} = join ' ', @nginx, '-s', 'reload';
$ENV{OUT} = $dir;
$ENV{CHROMIUM} = $chromium;
$ENV{GOIM_TIME_SCALE} = Goim::Time::scale();

# the demo page, then goim over SSE (t/browser/sse.mjs: EventSource)
# GOIM_BROWSER_ONLY=transports.mjs (names, comma-separated): only those
my %only = map { $_ => 1 } split /,/, $ENV{GOIM_BROWSER_ONLY} // '';
for my $script (['demo.mjs', 18], ['sse.mjs', 7], ['transports.mjs', $has_poll ? 29 : 20]) {
    my ($name, $least) = @$script;
    next if %only && !$only{$name};
    open my $run, '-|', 'node', "$top/t/browser/$name" or die "node: $!";
    my $seen = 0;
    while (my $line = <$run>) {
        chomp $line;
        if ($line =~ /^ok (.*)/) {
            pass($1);
        } elsif ($line =~ /^not ok (.*)/) {
            fail($1);
        } else {
            diag($line);
            next;
        }
        $seen++;
    }
    close $run;
    is($? >> 8, 0, "the browser run of $name exited cleanly");
    ok($seen >= $least, "the browser run of $name reported its checks ($seen)");
}
ok(-s "$dir/demo.png", "a screenshot of the demo page: $dir/demo.png") if !%only || $only{'demo.mjs'};

kill 'QUIT', $pid;
$deadline = time + Goim::Time::scaled(10);
my $st;
while (time < $deadline) {
    if (waitpid($pid, WNOHANG) == $pid) { $st = $?; last }
    sleep 0.05;
}
unless (defined $st) { kill 'KILL', $pid; waitpid $pid, 0; $st = -1 }
is($st, 0, 'nginx exited normally');

my $log = do { local (@ARGV, $/) = "$dir/logs/error.log"; <> // '' };
my @bad = grep { /\[(?:alert|crit|emerg)\]/ } split /\n/, $log;
ok(!@bad, 'no [alert], [crit] or [emerg] in error.log') or diag(join "\n", @bad[0 .. ($#bad > 5 ? 5 : $#bad)]);

$job->stop;
$router->stop;
done_testing();
