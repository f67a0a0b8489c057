# worker_processes and the zone's sizes count wherever they are in the
# file: here they come after stream {}, and a broadcast that reaches one
# worker still reaches the clients of both (the zone, its worker queues and
# its rings are sized from the final count).  Test::Nginx always writes
# worker_processes first, so this file writes its own nginx.conf.
use strict;
use warnings;

BEGIN {
    if ($ENV{TEST_NGINX_USE_VALGRIND}) {
        print "1..0 # SKIP several workers need a master process, which "
              . "valgrind mode turns off\n";
        exit 0;
    }
}

use Test::More;
use Cwd qw(abs_path);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use Goim::Client;
use Goim::Daemon;
use Goim::RouterRpc;
use Goim::Time;

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $objs = abs_path($ENV{GOIM_NGINX_OBJS} || 'build/nginx/objs');
my $stream = '/usr/lib/nginx/modules/ngx_stream_module.so';
my @mids = (900 .. 915);

my $router = Goim::Daemon->start('router');
my %port = map { $_ => Goim::Daemon::free_port() } qw(comet push logic http);
$ENV{TEST_NGINX_PUSH_PORT} = $port{push};

my $dir = tempdir(CLEANUP => 1);
mkdir "$dir/logs";
my $secret = $ENV{TEST_NGINX_RPC_SECRET_FILE};
my $user = $> == 0 ? "user root;\n" : '';
my $to = int(Goim::Time::scaled(3));

open my $fh, '>', "$dir/nginx.conf" or die $!;
print $fh <<"_EOC_";
load_module $stream;
load_module $objs/ngx_goim_comet_module.so;
load_module $objs/ngx_goim_logic_module.so;
daemon on;
master_process on;
${user}error_log $dir/logs/error.log info;
pid $dir/nginx.pid;

events {
    worker_connections 1024;
}

goim_comet_id comet-order;
goim_comet_rpc_secret_file $secret;
goim_logic_rpc_secret_file $secret;
goim_comet_logic 127.0.0.1:$port{logic};
goim_comet_rpc_timeout ${to}s;
goim_logic_router 127.0.0.1:${\ $router->port};

stream {
    server {
        listen 127.0.0.1:$port{comet} reuseport;
        goim_comet;
    }

    server {
        listen 127.0.0.1:$port{push};
        goim_comet_push;
    }

    server {
        listen 127.0.0.1:$port{logic};
        goim_logic_rpc;
    }
}

# after stream {}: they used to count only before it
worker_processes 2;
goim_comet_worker_queue 256k;

http {
    access_log off;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;

    server {
        listen 127.0.0.1:$port{http};

        location = /status {
            goim_comet_status;
        }
    }
}
_EOC_
close $fh;

my $out = `$nginx -p $dir -c $dir/nginx.conf 2>&1`;
is($?, 0, 'nginx starts with worker_processes after stream {}') or diag($out);

sub errlog {
    open my $l, '<', "$dir/logs/error.log" or return '';
    local $/;
    return <$l>;
}

my $http = HTTP::Tiny->new(timeout => Goim::Time::scaled(3));
my $status = '';
Goim::Time::wait_until(sub {
    $status = $http->get("http://127.0.0.1:$port{http}/status")->{content} // '';
    $status =~ /"workers":2,/;
}, 10);
like($status, qr/"workers":2,/, 'the zone has a queue for each of the 2 workers');

my %c;
for my $mid (@mids) {
    $c{$mid} = Goim::Client->new('127.0.0.1', $port{comet}, Goim::Time::scaled(5));
    my $auth = $c{$mid}->auth('{"mid":' . $mid . ',"key":"order-' . $mid
                              . '","room_id":"live://66","accepts":[1000]}', 1);
    ok($auth && $auth->{op} == 8, "client $mid authenticated");
}

# a Broadcast (202) to the push port: one worker gets it, the other
# worker's clients get it through its ring
my $proto = Goim::RouterRpc::f_varint(1, 1) . Goim::RouterRpc::f_varint(2, 1000)
            . Goim::RouterRpc::f_bytes(4, 'after-stream');
my ($op) = Goim::RouterRpc::call($port{push}, 202,
                                 Goim::RouterRpc::f_varint(1, 1000)
                                 . Goim::RouterRpc::f_bytes(2, $proto));
is($op, 202 | 0x40000000, 'Broadcast answered');

for my $mid (@mids) {
    my $p = $c{$mid}->read_packet(Goim::Time::scaled(3));
    is($p && $p->{body}, 'after-stream', "client $mid got the broadcast");
}

$status = $http->get("http://127.0.0.1:$port{http}/status")->{content} // '';
like($status, qr/"workers_queue":\{"records":[1-9]/,
     'the broadcast crossed between workers');

unlike(errlog(), qr/\[(?:alert|crit|emerg)\]/, 'no alert in the error log');

$_->close for values %c;

if (open my $p, '<', "$dir/nginx.pid") {
    chomp(my $pid = <$p>);
    kill 'QUIT', $pid;
    Goim::Time::wait_until(sub { !kill 0, $pid }, 10);
}

$router->stop;

done_testing();
