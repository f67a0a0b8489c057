# The status page, and a slow consumer: its queue is bounded, what does not
# fit is dropped, counted and logged, and other clients do not notice.
use strict;
use warnings;

use Test::Nginx::Socket 'no_plan';
use Goim::Stack;
use Goim::Time;
use Goim::Client;

Goim::Stack::setup();
run_tests();
Goim::Stack::teardown();

__DATA__

=== TEST 1: status in JSON counts connections by transport and rooms
--- init
Goim::Stack::client('t1', '{"mid":700,"room_id":"live://70","accepts":[1000]}', 1);
Goim::Stack::client('w1', '{"mid":701,"room_id":"live://71","accepts":[1000]}', 1, transport => 'ws');
Goim::Stack::client('anon', undef, undef);
--- request
GET /status
--- response_headers
Content-Type: application/json
--- response_body_like chomp
^\{"id":"comet-test","workers":1,"connections":\{"tcp":2,"ws":1,"poll":0,"online":2\},"rooms":2,.*"auth_failed":0,"kicked":0,"bad_input":0,"rpc_auth_refused":0\}$



=== TEST 2: status in Prometheus text
--- init
Goim::Stack::client('p1', '{"mid":702,"accepts":[1000]}', 1);
--- request
GET /status?format=prometheus
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body_like chomp
goim_comet_connections\{transport="tcp"\} 1\n.*goim_comet_online 1\n.*goim_comet_dropped_total\{reason="client_queue_full"\} 0\n.*goim_comet_keys 1\n



=== TEST 2b: every Prometheus line is a comment or a metric with an integer value, down to the last one (the long-polls' expired sessions)
--- init
Goim::Stack::client('p2', '{"mid":703,"accepts":[1000]}', 1);
--- request
GET /status?format=prometheus
--- response_body_like chomp
\A(?:(?:# (?:HELP|TYPE) goim_comet_[a-z_0-9]+ [^\n]+|goim_comet_[a-z_0-9]+(?:\{[a-z_]+="[^"\n]*"(?:,[a-z_]+="[^"\n]*")*\})? \d+)\n)+(?<=goim_comet_poll_total\{event="expired"\} 0\n)\z



=== TEST 3: a client that does not read loses pushes beyond its queue, counted; another gets them all
--- config eval
$Goim::Stack::Config . "
    location = /status2 {
        goim_comet_status;
    }
"
--- main_config eval
my $c = $Goim::Stack::MainConfig;
$c =~ s/(listen 127\.0\.0\.1:\$TEST_NGINX_COMET_PORT)/$1 sndbuf=4k/;
$c =~ s/goim_comet;/goim_comet; goim_comet_queue 8;/;
$c
--- init
my $slow = Goim::Stack::client('slow', '{"mid":710,"accepts":[1000]}', 1);
setsockopt($slow->sock, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
my $fast = Goim::Stack::client('fast', '{"mid":711,"accepts":[1000]}', 1);
Goim::Stack::push('/goim/push/mids?operation=1000&mids=710', 'x' x 4000, 400);
Goim::Stack::push('/goim/push/mids?operation=1000&mids=711', 'after the flood', 1);
# job delivers after logic answered: the status once comet has dropped one
Goim::Time::wait_until(sub {
    open my $fh, '<', Test::Nginx::Socket::server_root() . '/logs/error.log' or return 0;
    grep { /output queue full \(8\), push dropped/ } <$fh>;
}, 10);
--- request
GET /status2
--- response_body_like chomp
"dropped":[1-9][0-9]*,
--- goim_receive
fast op=1000 seq=0 ver=1 body=after the flood
--- error_log
output queue full (8), push dropped
--- no_error_log
[alert]
[crit]



=== TEST 4: bad input is counted
--- init
my $c = Goim::Stack::client('bad', undef, undef);
$c->send_raw(pack('l> s> s> l> l>', 16, 99, 1, 7, 1));
$c->wait_closed(Goim::Time::scaled(2));
--- request
GET /status
--- response_body_like chomp
"bad_input":1,"rpc_auth_refused":0\}
