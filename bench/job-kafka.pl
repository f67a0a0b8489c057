#!/usr/bin/perl
# goim-job benchmark (not run by make test): a real Kafka broker, router,
# job and nginx (comet + logic with goim_logic_queue kafka=), one goim
# client on the comet.
#
#   1. throughput, room: N ROOM records for the client's room are produced
#      straight to Kafka while job is down, then job starts and drains the
#      backlog into the comet: records/s from the first to the last packet
#      the client receives;
#   2. throughput, push: the same with N PUSH records for the client's key;
#   3. room latency at a low rate: one room push every 50 ms through the
#      whole stack (HTTP POST to logic -> Kafka -> job -> comet -> client),
#      from just before the POST to the packet's arrival.
#
# Run from the repository root after `make bench`:
#   perl bench/job-kafka.pl [N]          (default N = 100000)
use strict;
use warnings;

use lib 't/lib';
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Goim::Client;
use Goim::Daemon;
use Goim::Kafka;

my $N = shift // 100000;
my $BUILD = $ENV{GOIM_BUILD_DIR} // 'build';
my $RUN = "$BUILD/bench-run";
remove_tree($RUN);
make_path("$RUN/logs", "$RUN/tmp");

-x "$BUILD/bench/produce" or die "$BUILD/bench/produce is missing: run make bench\n";

my $kafka = Goim::Kafka->start(partitions => 4);
my $router = Goim::Daemon->start('router', log_level => 'info');
my %port = map { $_ => Goim::Daemon::free_port() } qw(comet push logic http job);
my @job_args = ('--kafka-brokers', $kafka->brokers, '--kafka-topic', $kafka->topic,
                '--kafka-group', "bench-$$", '--max-inflight', '20000');

# the daemons prove Goim::Daemon's secret ($GOIM_RPC_SECRET_FILE): so must nginx
my $secret = $ENV{GOIM_RPC_SECRET_FILE}
    ? "goim_comet_rpc_secret_file $ENV{GOIM_RPC_SECRET_FILE};\n"
      . "goim_logic_rpc_secret_file $ENV{GOIM_RPC_SECRET_FILE};" : '';
open my $fh, '>', "$RUN/nginx.conf" or die;
print $fh <<"EOC";
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $ENV{PWD}/$BUILD/nginx/objs/ngx_goim_comet_module.so;
load_module $ENV{PWD}/$BUILD/nginx/objs/ngx_goim_logic_module.so;
worker_processes 1;
daemon off;
master_process on;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
goim_comet_id comet-bench;
goim_comet_logic 127.0.0.1:$port{logic};
goim_logic_router 127.0.0.1:$ENV{TEST_NGINX_ROUTER_PORT};
goim_logic_queue kafka=@{[$kafka->brokers]} topic=@{[$kafka->topic]};
$secret
stream {
    server { listen 127.0.0.1:$port{comet}; goim_comet; goim_comet_queue 65536; }
    server { listen 127.0.0.1:$port{push}; goim_comet_push; }
    server { listen 127.0.0.1:$port{logic}; goim_logic_rpc; }
}
http {
    access_log off;
    client_body_temp_path tmp;
    server { listen 127.0.0.1:$port{http}; location /goim/ { goim_logic_api; } }
}
EOC
close $fh;

my $ngx = fork // die;
if (!$ngx) {
    exec '/usr/sbin/nginx', '-p', "$ENV{PWD}/$RUN/", '-c', "$ENV{PWD}/$RUN/nginx.conf";
    exit 127;
}
sleep 0.5;

my $c = Goim::Client->new('127.0.0.1', $port{comet}, 5);
$c->auth('{"mid":1,"key":"bench-key","room_id":"live://bench","accepts":[1000]}', 1)
    or die "auth failed\n";

sub start_job {
    return Goim::Daemon->start('job', port => $port{job}, log_level => 'info',
                               args => \@job_args);
}

# CPU seconds the process has used
sub cpu_s {
    my $pid = shift;
    open my $f, '<', "/proc/$pid/stat" or return 0;
    my @f = split ' ', scalar <$f>;
    return ($f[13] + $f[14]) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

sub stop_job {
    my $j = shift;
    kill 'TERM', $j->pid;
    waitpid $j->pid, 0;
    $j->{stopped} = 1;
}

sub drain {
    my ($what, $n) = @_;
    my ($first, $last, $got) = (undef, undef, 0);
    while ($got < $n) {
        my $p = $c->read_packet(30) or last;
        $first //= time;
        $last = time;
        $got++;
    }
    die "$what: only $got of $n records arrived\n" unless $got == $n;
    my $rate = $n / (($last - $first) || 1e-6);
    printf "%-28s %8d records in %6.2f s: %8.0f records/s\n", $what, $n, $last - $first, $rate;
}

for my $phase (['room', 'live://bench', 'throughput, ROOM records'],
               ['push', 'comet-bench:bench-key', 'throughput, PUSH records']) {
    my ($type, $target, $label) = @$phase;
    system("$BUILD/bench/produce", $kafka->brokers, $kafka->topic, $type, $N, $target, 1000) == 0
        or die "produce failed\n";
    my $job = start_job();
    drain($label, $N);
    my $cpu = cpu_s($job->pid);
    printf "%-28s job used %.2f CPU s: %.0f records per job CPU second\n", '', $cpu, $N / ($cpu || 1e-6);
    stop_job($job);
}

my $job = start_job();
sleep 2;                                      # group joined
my @lat;
for my $i (1 .. 200) {
    my $t0 = time;
    my ($st) = Goim::Kafka::http_post($port{http},
        "/goim/push/room?operation=1000&type=live&room=bench", "l$i");
    die "push: $st\n" unless $st == 200;
    my $p = $c->read_packet(5) or die "room push $i did not arrive\n";
    push @lat, (time - $t0) * 1000;
    sleep 0.05;
}
@lat = sort { $a <=> $b } @lat;
printf "room latency, 1 push / 50 ms: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%d pushes)\n",
    @lat[int(@lat * .5), int(@lat * .9), int(@lat * .99)], $lat[-1], scalar @lat;
stop_job($job);

kill 'QUIT', $ngx;
waitpid $ngx, 0;
kill 'TERM', $router->pid;
waitpid $router->pid, 0;
$router->{stopped} = 1;
$kafka->finish;
